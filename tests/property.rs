//! A property on day one: set it up, keep household files with their
//! history, import households from a spreadsheet (all or nothing), and who
//! sees what.

use anyhow::Result;
use serde_json::{Value, json};

use harness::{Api, TestRelay};

/// Sets up a property of `per_building` units of 100.00 m² in T1 and T2.
pub(crate) async fn setup(manager: &Api, per_building: usize) -> Result<()> {
    let mut units = Vec::new();
    for b in ["T1", "T2"] {
        for i in 1..=per_building {
            units.push(
                json!({"code": format!("{b}-{i:03}"), "building": b, "area_centi_m2": 10_000}),
            );
        }
    }
    let (status, body) = manager
        .post(
            "/api/v1/property",
            &json!({
                "name": "Harbour View 海景花园",
                "buildings": [{"code": "T1", "name": "1号楼"}, {"code": "T2", "name": "2号楼"}],
                "units": units,
            }),
        )
        .await?;
    anyhow::ensure!(status == 200, "setup: HTTP {status}: {body}");
    Ok(())
}

fn file_of(body: &Value) -> &Value {
    &body["household"]
}

#[tokio::test]
async fn a_manager_sets_up_the_property_once() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    let (_, before) = manager.get("/api/v1/property").await?;
    assert!(before["property"].is_null());
    // Bad units are named and nothing is written.
    let (status, body) = manager
        .post(
            "/api/v1/property",
            &json!({"name": "P", "buildings": [{"code": "T1"}],
                    "units": [{"code": "T1-1", "building": "T9", "area_centi_m2": 100},
                              {"code": "T1-2", "building": "T1", "area_centi_m2": 0}]}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("T1-1") && msg.contains("T9") && msg.contains("T1-2"),
        "{msg}"
    );
    assert!(manager.get("/api/v1/property").await?.1["property"].is_null());

    let frontdesk = relay.api("frontdesk").await?;
    let (status, _) = frontdesk
        .post(
            "/api/v1/property",
            &json!({"name": "P", "buildings": [], "units": []}),
        )
        .await?;
    assert_eq!(status, 403);

    setup(&manager, 3).await?;
    let (_, p) = manager.get("/api/v1/property").await?;
    assert_eq!(p["property"]["time_zone"], "Asia/Shanghai");
    assert_eq!(p["property"]["buildings"][0]["units"], 3);
    assert_eq!(p["property"]["buildings"][0]["area_centi_m2"], 30_000);
    let (status, _) = manager
        .post(
            "/api/v1/property",
            &json!({"name": "Again", "buildings": [], "units": []}),
        )
        .await?;
    assert_eq!(status, 409);
    Ok(())
}

#[tokio::test]
async fn household_files_keep_their_history_and_phones_stay_private() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 3).await?;
    let frontdesk = relay.api("frontdesk").await?;
    let h = json!({
        "unit": "T1-001", "occupancy": "owner",
        "residents": [{"name": "王芳", "relation": "owner", "phone": "139 1234 5678"}],
        "move_in": "2025-03-01", "vehicles": ["沪A12345"], "parking": ["P-7"], "notes": "狗",
    });
    let (status, created) = frontdesk.post("/api/v1/household-files", &h).await?;
    assert_eq!(status, 200, "{created}");
    let id = file_of(&created)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(file_of(&created)["version"], 1);

    // Found by the caller's number, written any way, and by the plate.
    for q in ["13912345678", "1234 5678", "沪A12345", "T1-001", "王"] {
        let (_, found) = frontdesk
            .get(&format!("/api/v1/household-files?q={}", urlencode(q)))
            .await?;
        assert_eq!(found["households"].as_array().map(Vec::len), Some(1), "{q}");
    }

    // An edit on the version read; a stale edit is refused, not merged.
    let mut edited = h.clone();
    edited["residents"][0]["phone"] = json!("138 0000 1111");
    edited["move_out"] = json!("2026-06-15");
    let (status, body) = frontdesk
        .put(
            &format!("/api/v1/household-files/{id}"),
            &json!({"version": 1, "household": edited}),
        )
        .await?;
    assert_eq!((status, body["version"].clone()), (200, json!(2)), "{body}");
    let (status, _) = frontdesk
        .put(
            &format!("/api/v1/household-files/{id}"),
            &json!({"version": 1, "household": h}),
        )
        .await?;
    assert_eq!(status, 409);

    let (_, file) = manager
        .get(&format!("/api/v1/household-files/{id}"))
        .await?;
    let history = file["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["by"], "frontdesk");
    assert_eq!(
        history[1]["before"]["residents"][0]["phone"],
        "139 1234 5678"
    );
    assert_eq!(
        history[1]["after"]["residents"][0]["phone"],
        "138 0000 1111"
    );

    // Report 17: the extract carries the file, its history and its ledger;
    // the front desk sees only whether the household owes.
    let (status, x) = manager
        .get(&format!("/api/v1/household-files/{id}/extract"))
        .await?;
    assert_eq!(status, 200, "{x}");
    assert_eq!(x["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(x["ledger"]["arrears_fen"], 0);
    let (_, x) = frontdesk
        .get(&format!("/api/v1/household-files/{id}/extract"))
        .await?;
    assert_eq!(x["ledger"], json!({"in_arrears": false}));

    // Engineers see no household file here (phones are private).
    let eng = relay.api("eng1").await?;
    let (status, _) = eng.get(&format!("/api/v1/household-files/{id}")).await?;
    assert_eq!(status, 403);

    // The register also feeds the contact form's household search (tickets
    // link to it): by unit, and by the caller's number.
    let (_, found) = frontdesk.get("/api/v1/households?q=T1-001").await?;
    assert_eq!(found["households"][0]["id"], json!(id));
    let (_, found) = frontdesk.get("/api/v1/households?q=13800001111").await?;
    assert_eq!(found["households"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["households"][0]["id"], json!(id));
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn an_import_with_bad_rows_is_refused_whole_naming_every_row() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 5).await?;
    let frontdesk = relay.api("frontdesk").await?;
    let csv = "单元,类型,姓名,电话,入住日期,迁出日期\n\
               T1-001,业主,王芳,13912345678,2025-03-01,\n\
               T1-002,租户,李敏,12,2025-03-01,\n\
               T9-001,业主,赵磊,,2025-03-01,\n\
               T1-004,业主,孙浩,,2025-13-01,\n\
               T1-005,业主,周敏,,2025-03-01,\n";
    let (status, body) = frontdesk
        .post_bytes(
            "/api/v1/household-files/import?commit=true",
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let errors: Vec<(u64, String)> = body["error"]["details"]["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or(0),
                e["column"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (3, "电话".into()),
            (4, "单元".into()),
            (5, "入住日期".into())
        ]
    );
    let (_, files) = frontdesk.get("/api/v1/household-files").await?;
    assert_eq!(
        files["households"].as_array().map(Vec::len),
        Some(0),
        "half imported"
    );

    // Fixed, previewed (nothing written), then committed.
    let good = "unit,occupancy,name,phone,move_in\nT1-001,owner,Wang,13912345678,2025-03-01\nT1-002,tenant,Li,,2025-03-01\n";
    let (status, preview) = frontdesk
        .post_bytes("/api/v1/household-files/import", "text/csv", good.into())
        .await?;
    assert_eq!((status, preview["committed"].clone()), (200, json!(false)));
    assert_eq!(
        frontdesk.get("/api/v1/household-files").await?.1["households"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let (status, done) = frontdesk
        .post_bytes(
            "/api/v1/household-files/import?commit=true",
            "text/csv",
            good.into(),
        )
        .await?;
    assert_eq!((status, done["rows"].clone()), (200, json!(2)), "{done}");
    assert_eq!(
        frontdesk.get("/api/v1/household-files").await?.1["households"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    Ok(())
}

/// Imports 2,000 households from one CSV and reports how long it took (the
/// figure in BENCHMARKS.md); asserts only that all of them are there.
#[tokio::test]
async fn two_thousand_units_import_whole() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 1000).await?;
    let mut csv = String::from("unit,occupancy,name,phone,move_in,parking\n");
    for b in ["T1", "T2"] {
        for i in 1..=1000 {
            csv.push_str(&format!(
                "{b}-{i:03},owner,Resident {b}{i},139{i:08},2025-03-01,{}\n",
                if i % 10 == 0 {
                    format!("P-{b}{i}")
                } else {
                    String::new()
                }
            ));
        }
    }
    let started = std::time::Instant::now();
    let (status, body) = manager
        .post_bytes(
            "/api/v1/household-files/import?commit=true",
            "text/csv",
            csv.into_bytes(),
        )
        .await?;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], 2000);
    eprintln!("imported 2,000 households (register and both documents each) in {took:?}");
    let (_, files) = manager.get("/api/v1/household-files").await?;
    assert_eq!(files["households"].as_array().map(Vec::len), Some(2000));
    Ok(())
}

/// Polls an import job until it ends, returning every status seen.
async fn follow(api: &Api, id: &str) -> Result<Vec<Value>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let (status, job) = api
            .get(&format!("/api/v1/household-files/imports/{id}"))
            .await?;
        anyhow::ensure!(status == 200, "job {id}: HTTP {status}: {job}");
        let ended = matches!(job["state"].as_str(), Some("done" | "failed"));
        seen.push(job);
        if ended {
            return Ok(seen);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "job {id} still running: {:?}",
            seen.last()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn stage_rank(s: &Value) -> usize {
    ["parsing", "checking", "writing", "done", "failed"]
        .iter()
        .position(|x| s == *x)
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn an_import_job_reports_its_progress_and_commits_whole() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 300).await?;
    let frontdesk = relay.api("frontdesk").await?;

    // A file with a bad row: the job fails naming it, and nothing is written.
    let bad = "unit,occupancy,name,move_in\nT1-001,owner,Wang,2025-03-01\nT9-001,owner,Li,2025-03-01\nT1-003,owner,Zhao,someday\n";
    let (status, job) = frontdesk
        .post_bytes(
            "/api/v1/household-files/imports?commit=true",
            "text/csv",
            bad.into(),
        )
        .await?;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let end = follow(&frontdesk, &id).await?;
    let last = end.last().cloned().unwrap_or_default();
    assert_eq!(last["state"], "failed", "{last}");
    let rows: Vec<(u64, &str)> = last["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or(0),
                e["column"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(rows, [(3, "unit"), (4, "move_in")], "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was imported")),
        "{last}"
    );
    assert_eq!(
        frontdesk.get("/api/v1/household-files").await?.1["households"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "half imported"
    );
    // Only its starter follows a job; an unknown one is not found.
    assert_eq!(
        manager
            .get(&format!("/api/v1/household-files/imports/{id}"))
            .await?
            .0,
        404
    );
    assert_eq!(
        frontdesk
            .get("/api/v1/household-files/imports/nosuchjob")
            .await?
            .0,
        404
    );
    let eng = relay.api("eng1").await?;
    let (status, _) = eng
        .post_bytes("/api/v1/household-files/imports", "text/csv", bad.into())
        .await?;
    assert_eq!(status, 403);

    // 600 good rows: the states only move forward, done never goes back in
    // a state nor passes the total, and the end is every household written.
    let mut csv = String::from("unit,occupancy,name,phone,move_in\n");
    for b in ["T1", "T2"] {
        for i in 1..=300 {
            csv.push_str(&format!(
                "{b}-{i:03},owner,Resident {b}{i},139{i:08},2025-03-01\n"
            ));
        }
    }
    let (status, job) = frontdesk
        .post_bytes(
            "/api/v1/household-files/imports?commit=true&format=csv",
            "application/octet-stream",
            csv.into_bytes(),
        )
        .await?;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let seen = follow(&frontdesk, &id).await?;
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            stage_rank(&a["state"]) <= stage_rank(&b["state"]),
            "{a} then {b}"
        );
        if a["state"] == b["state"] {
            assert!(a["done"].as_u64() <= b["done"].as_u64(), "{a} then {b}");
        }
    }
    for s in &seen {
        assert!(s["done"].as_u64() <= s["total"].as_u64(), "{s}");
    }
    let last = seen.last().cloned().unwrap_or_default();
    assert_eq!(last["state"], "done", "{last}");
    assert_eq!(
        (last["done"].clone(), last["total"].clone()),
        (json!(600), json!(600))
    );
    assert_eq!(last["result"]["committed"], true);
    assert_eq!(last["result"]["rows"], 600);
    let mut states: Vec<&str> = seen.iter().filter_map(|s| s["state"].as_str()).collect();
    states.dedup();
    eprintln!(
        "import job: {} statuses seen, states {states:?}",
        seen.len()
    );
    assert_eq!(
        frontdesk.get("/api/v1/household-files").await?.1["households"]
            .as_array()
            .map(Vec::len),
        Some(600)
    );
    Ok(())
}

/// Creates the household file of T1-001 (王芳, 139 1234 5678) and returns its id.
pub(crate) async fn wang_fang(frontdesk: &Api) -> Result<String> {
    let (status, created) = frontdesk
        .post(
            "/api/v1/household-files",
            &json!({
                "unit": "T1-001", "occupancy": "owner", "move_in": "2025-03-01",
                "residents": [{"name": "王芳", "relation": "owner", "phone": "139 1234 5678"}],
                "vehicles": ["沪A12345"],
            }),
        )
        .await?;
    anyhow::ensure!(status == 200, "household: HTTP {status}: {created}");
    Ok(file_of(&created)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn the_contact_form_records_the_caller_and_only_the_entitled_read_the_number() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 3).await?;
    let desk = relay.api("frontdesk").await?;
    let hid = wang_fang(&desk).await?;

    // The caller's number finds the household for the front desk; a role
    // that may not read private files learns nothing from a number.
    let (_, found) = desk.get("/api/v1/households?q=13912345678").await?;
    assert_eq!(found["households"][0]["id"], json!(hid), "{found}");
    assert!(found["households"][0].get("residents").is_none());
    let engsup = relay.api("engsup").await?;
    let (status, found) = engsup.get("/api/v1/households?q=13912345678").await?;
    assert_eq!(status, 200);
    assert_eq!(found["households"], json!([]), "{found}");
    let (_, found) = engsup.get("/api/v1/households?q=T1-001").await?;
    assert_eq!(
        found["households"][0]["id"],
        json!(hid),
        "by unit it still finds"
    );

    // A caller needs a name or a number, and a number is digits.
    for bad in [
        json!({"name": "", "phone": ""}),
        json!({"name": "王芳", "phone": "call me"}),
        json!({"name": "王芳", "phone": "12"}),
    ] {
        let (status, body) = desk
            .post(
                "/api/v1/tickets",
                &json!({"kind": "complaint", "title": "噪音", "household": hid, "caller": bad}),
            )
            .await?;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({
                "kind": "repair", "title": "厨房漏水 kitchen leak", "household": hid,
                "category": "plumbing", "channel": "phone",
                "caller": {"name": "王芳", "phone": "139 1234 5678", "read_back": true},
            }),
        )
        .await?;
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        t["caller"],
        json!({"name": "王芳", "phone": "139 1234 5678", "masked": false, "read_back": true})
    );

    // The engineering supervisor reads the order (to dispatch it) with the
    // number masked, as the document every phone syncs holds it.
    let masked =
        json!({"name": "王芳", "phone": "139 **** 5678", "masked": true, "read_back": true});
    assert_eq!(engsup.ticket(&id).await?["caller"], masked);
    assert_eq!(
        desk.act(&id, "assign", json!({"assignee": "eng1"})).await?,
        "accepted"
    );
    // The assignee may need to call: the full number.
    let eng1 = relay.api("eng1").await?;
    assert_eq!(eng1.ticket(&id).await?["caller"]["phone"], "139 1234 5678");
    // Once the order is taken from eng1 (transferred to eng2), eng1 still
    // reads the ticket, but the number masked; eng2 reads it whole.
    assert_eq!(eng1.act(&id, "accept", json!({})).await?, "accepted");
    assert_eq!(
        engsup
            .act(
                &id,
                "transfer",
                json!({"assignee": "eng2", "reason": "needs a plumber"})
            )
            .await?,
        "accepted"
    );
    assert_eq!(eng1.ticket(&id).await?["caller"], masked);
    let eng2 = relay.api("eng2").await?;
    assert_eq!(eng2.ticket(&id).await?["caller"]["phone"], "139 1234 5678");
    // A supervisor (a private-file role) reads it whole.
    let supervisor = relay.api("supervisor").await?;
    assert_eq!(
        supervisor.ticket(&id).await?["caller"]["phone"],
        "139 1234 5678"
    );

    // A ticket without a caller (found on site) has none.
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "need", "title": "路灯不亮", "location": "T2 lobby", "channel": "on_site"}),
        )
        .await?;
    assert_eq!((status, t["caller"].clone()), (201, json!(null)), "{t}");
    Ok(())
}

#[tokio::test]
async fn report_17_prints_for_the_entitled_and_never_for_an_engineer() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 3).await?;
    let desk = relay.api("frontdesk").await?;
    let hid = wang_fang(&desk).await?;
    let (_, f) = desk.get(&format!("/api/v1/household-files/{hid}")).await?;
    let mut edited = f["household"].clone();
    edited["notes"] = json!("养狗 <b>dog</b>");
    let (status, body) = desk
        .put(
            &format!("/api/v1/household-files/{hid}"),
            &json!({"version": 1, "household": edited}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "complaint", "title": "楼上噪音 noise upstairs", "household": hid}),
        )
        .await?;
    assert_eq!(status, 201, "{t}");

    let path = format!("/households/{hid}/print");
    let (status, page) = manager.get_text(&path).await?;
    assert_eq!(status, 200, "{page}");
    for want in [
        "一户一档",
        "T1-001",
        "王芳",
        "139 1234 5678",
        "沪A12345",
        "修改记录",
        "楼上噪音 noise upstairs",
        "投诉 complaint",
        "物业费",
        "账单",
        "/households/print.css",
    ] {
        assert!(page.contains(want), "{want} missing from the page");
    }
    // Notes are text, never markup; edits are listed by version.
    assert!(page.contains("养狗 &lt;b&gt;dog&lt;/b&gt;"));
    assert!(!page.contains("<b>dog"));
    // The front desk prints the file but of the fees only whether it owes.
    let (status, page) = desk.get_text(&path).await?;
    assert_eq!(status, 200);
    assert!(page.contains("无欠费 not in arrears"));
    assert!(!page.contains("账单"), "the front desk sees no bills");
    // Engineers and patrollers may not print a household's file.
    for user in ["eng1", "security1"] {
        let (status, _) = relay.api(user).await?.get_text(&path).await?;
        assert_eq!(status, 403, "{user}");
    }
    let (status, css) = desk.get_text("/households/print.css").await?;
    assert!(status == 200 && css.contains("@page"), "{css}");
    let (status, _) = manager
        .get_text(&format!(
            "/households/{}/print",
            server::schema::DocId::random()
        ))
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
