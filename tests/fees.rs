//! The fee ledger over a year: 200 households billed every month, with
//! prepayments, partial payments, arrears recovered late, move-outs, refunds
//! approved by the manager, and report 16's three rates checked against
//! figures worked out by hand below. Two cashiers paying at once never
//! allocate the same fen twice; bill and receipt numbers never skip or
//! repeat.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::property::setup;
use harness::{Api, TestClock, TestRelay};

/// Local (Asia/Shanghai, UTC+8) wall time as UTC.
fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    // Shanghai keeps UTC+8 all year.
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .map(|t| t - chrono::Duration::hours(8))
        .unwrap_or_default()
}

fn last_day(m: u32) -> u32 {
    match m {
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

async fn start(clock: TestClock) -> Result<TestRelay> {
    TestRelay::start_at(clock, local(2025, 12, 1, 9), |c| {
        c.session_ttl = chrono::Duration::days(800);
    })
    .await
}

async fn items(manager: &Api) -> Result<()> {
    for item in [
        json!({"code": "property_fee", "name_zh": "物业费", "name_en": "property fee", "kind": "per_area", "rate_fen": 250}),
        json!({"code": "parking", "name_zh": "停车费", "name_en": "parking", "kind": "per_space", "rate_fen": 15_000}),
    ] {
        let (status, body) = manager.post("/api/v1/fees/items", &item).await?;
        ensure!(status == 200, "item: {body}");
    }
    Ok(())
}

async fn ok(what: &str, r: (u16, Value)) -> Result<Value> {
    ensure!(r.0 == 200, "{what}: HTTP {}: {}", r.0, r.1);
    Ok(r.1)
}

async fn pay(cashier: &Api, h: &str, fen: i64) -> Result<Value> {
    ok(
        "payment",
        cashier
            .post(
                "/api/v1/fees/payments",
                &json!({"household": h, "amount_fen": fen, "method": "wechat"}),
            )
            .await?,
    )
    .await
}

async fn run(manager: &Api, period: &str) -> Result<Value> {
    ok(
        "bill run",
        manager
            .post("/api/v1/fees/bill-runs", &json!({"period": period}))
            .await?,
    )
    .await
}

fn stat<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["summary"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["label"] == label))
        .map_or(&Value::Null, |x| &x["value"])
}

/// Moves household `id` out on `day` by editing its file.
async fn move_out(frontdesk: &Api, id: &str, day: &str) -> Result<()> {
    let (_, f) = frontdesk
        .get(&format!("/api/v1/household-files/{id}"))
        .await?;
    let mut h = f["household"].clone();
    let version = h["version"].clone();
    h["move_out"] = json!(day);
    ok(
        "move out",
        frontdesk
            .put(
                &format!("/api/v1/household-files/{id}"),
                &json!({"version": version, "household": h}),
            )
            .await?,
    )
    .await?;
    Ok(())
}

/// The year. Every unit is 100.00 m² at 2.50 元/m²/month: 250.00 a month;
/// h0, h10, …, h90 also rent a parking space at 150.00 a month. Bills are
/// run on each month's last day at 10:00.
/// - h0–h149 prepay the whole year in December 2025 (300.00 × 12, or
///   400.00 × 12 with parking): their credit pays each bill at the run;
/// - h150–h179 pay 200.00 each month after the run (50.00 short each time);
/// - h180–h189 pay nothing until 30 November, then 1,000.00 each;
/// - h190–h197 never pay;
/// - h198 moves out on 31 March, pays 1,000.00 that day and is refunded the
///   250.00 of credit on 2 April;
/// - h199 prepays 1,500.00, moves out on 15 June (June prorated: 15 of 30
///   days, 125.00) and is refunded the 125.00 left on 30 June.
///
/// November as of 30 November 23:00, by hand:
/// - billed households: h0–h197 = 198; in arrears for November: h150–h197 =
///   48; 户收费率 = 150 / 198 = 75.7575…% → 75.76%;
/// - receivable: 198 × 250.00 + 10 × 150.00 = 51,000.00; received: the
///   prepaid 150 households' 150 × 250.00 + 10 × 150.00 = 39,000.00 (the
///   others' money goes to older bills first); 收费率 = 39,000 / 51,000 =
///   76.470…% → 76.47%;
/// - arrears recovered in November: h150–h179's 30 × 200.00 (all to
///   September) + h180–h189's 10 × 1,000.00 = 16,000.00; still owed for
///   earlier months: h150–h179 30 × 300.00 (5,000 left of September's 25,000
///   … see below) = 9,000.00, h180–h189 10 × (2,500.00 − 1,000.00) =
///   15,000.00, h190–h197 8 × 2,500.00 = 20,000.00, total 44,000.00;
///   清缴率 = 16,000 / 60,000 = 26.666…% → 26.67%.
///   (h150 by November: billed 11 × 250 = 2,750, paid 11 × 200 = 2,200, oldest
///   first, so September keeps 50.00, October and November 250.00 each:
///   300.00 of earlier months.)
#[tokio::test]
async fn a_year_of_billing_for_two_hundred_households() -> Result<()> {
    static NOW: AtomicI64 = AtomicI64::new(0);
    let clock = TestClock::new(&NOW);
    let relay = start(clock).await?;
    let manager = relay.api("manager").await?;
    let cashier = relay.api("cashier").await?;
    let frontdesk = relay.api("frontdesk").await?;
    setup(&manager, 100).await?;
    items(&manager).await?;

    let mut csv = String::from("unit,occupancy,name,phone,move_in,parking\n");
    for i in 0..200usize {
        let unit = if i < 100 {
            format!("T1-{:03}", i + 1)
        } else {
            format!("T2-{:03}", i - 99)
        };
        let parking = if i < 100 && i % 10 == 0 {
            format!("P-{i}")
        } else {
            String::new()
        };
        csv.push_str(&format!(
            "{unit},owner,Owner {i},1390000{i:04},2025-06-01,{parking}\n"
        ));
    }
    let imported = ok(
        "import",
        frontdesk
            .post_bytes(
                "/api/v1/household-files/import?commit=true",
                "text/csv",
                csv.into_bytes(),
            )
            .await?,
    )
    .await?;
    ensure!(imported["rows"] == 200);
    let (_, files) = frontdesk.get("/api/v1/household-files").await?;
    let by_unit: BTreeMap<String, String> = files["households"]
        .as_array()
        .context("files")?
        .iter()
        .map(|f| {
            (
                f["unit"].as_str().unwrap_or_default().to_owned(),
                f["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let h: Vec<String> = (0..200usize)
        .map(|i| {
            let unit = if i < 100 {
                format!("T1-{:03}", i + 1)
            } else {
                format!("T2-{:03}", i - 99)
            };
            by_unit[&unit].clone()
        })
        .collect();

    // December 2025: prepayments.
    clock.set(local(2025, 12, 20, 10));
    for (i, id) in h.iter().enumerate().take(150) {
        let monthly = if i < 100 && i % 10 == 0 {
            40_000
        } else {
            25_000
        };
        pay(&cashier, id, monthly * 12).await?;
    }
    pay(&cashier, &h[199], 150_000).await?;
    let (_, st) = cashier
        .get(&format!("/api/v1/fees/households/{}", h[0]))
        .await?;
    assert_eq!(st["credit_fen"], 480_000, "a prepayment is held as credit");

    let mut november = Value::Null;
    for m in 1..=12u32 {
        let period = format!("2026-{m:02}");
        if m == 3 {
            clock.set(local(2026, 3, 20, 9));
            move_out(&frontdesk, &h[198], "2026-03-31").await?;
        }
        if m == 4 {
            clock.set(local(2026, 4, 2, 9));
            let refund = json!({"household": h[198], "kind": "refund", "amount_fen": 25_000, "reason": "moved out; credit returned"});
            let (status, _) = cashier.post("/api/v1/fees/adjustments", &refund).await?;
            assert_eq!(status, 403, "a cashier cannot approve a refund");
            ok(
                "refund",
                manager.post("/api/v1/fees/adjustments", &refund).await?,
            )
            .await?;
        }
        if m == 6 {
            clock.set(local(2026, 6, 15, 9));
            move_out(&frontdesk, &h[199], "2026-06-15").await?;
        }
        clock.set(local(2026, m, last_day(m), 10));
        run(&manager, &period).await?;
        clock.set(local(2026, m, last_day(m), 12));
        for id in &h[150..180] {
            pay(&cashier, id, 20_000).await?;
        }
        if m == 3 {
            let r = pay(&cashier, &h[198], 100_000).await?;
            assert_eq!(r["receipt"]["credit_fen"], 25_000);
        }
        if m == 6 {
            let (_, st) = cashier
                .get(&format!("/api/v1/fees/households/{}", h[199]))
                .await?;
            assert_eq!(
                st["credit_fen"], 12_500,
                "June prorated: 150.00 − 5 × 250.00 − 125.00"
            );
            let refund = json!({"household": h[199], "kind": "refund", "amount_fen": 12_500, "reason": "moved out"});
            ok(
                "refund",
                manager.post("/api/v1/fees/adjustments", &refund).await?,
            )
            .await?;
        }
        if m == 11 {
            clock.set(local(2026, 11, 30, 14));
            for id in &h[180..190] {
                pay(&cashier, id, 100_000).await?;
            }
            clock.set(local(2026, 11, 30, 23));
            november = ok(
                "report",
                manager.get("/api/v1/reports/fee-collection").await?,
            )
            .await?;
            // The cashier's daily close lists every fee receipt of the day:
            // 30 × 200.00 + 10 × 1,000.00.
            let close = ok("close", cashier.get("/api/v1/reports/cashier-close").await?).await?;
            assert_eq!(stat(&close, "fee receipts"), 40);
            assert_eq!(stat(&close, "fee received (fen)"), 1_600_000);
            // A second run of the month bills nothing.
            let again = run(&manager, "2026-11").await?;
            assert_eq!(again["run"]["billed"], 0);
        }
    }

    assert_eq!(stat(&november, "month"), "2026-11");
    assert_eq!(stat(&november, "billed_households"), 198);
    assert_eq!(stat(&november, "households_in_arrears"), 48);
    assert_eq!(stat(&november, "household_collection_rate"), "75.76%");
    assert_eq!(stat(&november, "receivable"), "51000.00");
    assert_eq!(stat(&november, "received"), "39000.00");
    assert_eq!(stat(&november, "collection_rate"), "76.47%");
    assert_eq!(stat(&november, "arrears_recovered"), "16000.00");
    assert_eq!(stat(&november, "arrears_outstanding"), "44000.00");
    assert_eq!(stat(&november, "clearance_rate"), "26.67%");
    let formulas = &november["tables"][0];
    assert_eq!(formulas["title"], "Formulas");
    assert_eq!(formulas["rows"][2][1], "清欠收回 ÷（清欠收回 + 往期仍欠）");

    // As of the same cut-off, a month later, the report is the same.
    let q = "/api/v1/reports/fee-collection?as_of=2026-11-30T15:00:00Z";
    let later = ok("report", manager.get(q).await?).await?;
    assert_eq!(later["summary"], november["summary"]);
    assert_eq!(later["tables"], november["tables"]);
    let (status, xlsx) = manager.get_text(&format!("{q}&format=xlsx")).await?;
    assert_eq!(status, 200);
    assert!(xlsx.starts_with("PK"), "an XLSX file is a zip archive");
    let (status, csv) = manager.get_text(&format!("{q}&format=csv")).await?;
    assert_eq!(status, 200);
    assert!(
        csv.contains("户收费率 = (billed households")
            || csv.contains("（计费户数 − 欠费户数）÷ 计费户数"),
        "{csv}"
    );

    // Every bill and receipt number, once, none skipped.
    let (mut bills, mut receipts) = (Vec::new(), Vec::new());
    for id in &h {
        let (_, st) = cashier
            .get(&format!("/api/v1/fees/households/{id}"))
            .await?;
        for b in st["bills"].as_array().into_iter().flatten() {
            bills.push(b["number"].as_str().unwrap_or_default().to_owned());
        }
        for p in st["payments"].as_array().into_iter().flatten() {
            receipts.push(p["receipt"].as_str().unwrap_or_default().to_owned());
        }
    }
    // h0–h197 12 months each (2,376), h198 3, h199 6, parking 10 × 12 (120):
    // 2,505 bills.
    bills.sort();
    let expected: Vec<String> = (1..=2_505).map(|n| format!("BL-2026-{n:06}")).collect();
    assert_eq!(bills, expected);
    receipts.sort();
    // Receipts: 151 in 2025; 2026: 30 × 12 + 1 (h198) + 10 (November).
    let mut expected: Vec<String> = (1..=151).map(|n| format!("RC-2025-{n:06}")).collect();
    expected.extend((1..=371).map(|n| format!("RC-2026-{n:06}")));
    expected.sort();
    assert_eq!(receipts, expected);

    // The front desk sees only whether a household owes; engineers nothing.
    let (_, fd) = frontdesk
        .get(&format!("/api/v1/fees/households/{}", h[190]))
        .await?;
    assert_eq!(fd, json!({"household": h[190], "in_arrears": true}));
    let eng = relay.api("eng1").await?;
    let (status, _) = eng
        .get(&format!("/api/v1/fees/households/{}", h[190]))
        .await?;
    assert_eq!(status, 403);
    let (status, _) = eng.get("/api/v1/reports/fee-collection").await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test]
async fn two_cashiers_paying_one_household_at_once_never_double_allocate() -> Result<()> {
    static NOW: AtomicI64 = AtomicI64::new(0);
    let clock = TestClock::new(&NOW);
    let relay = start(clock).await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 2).await?;
    items(&manager).await?;
    let frontdesk = relay.api("frontdesk").await?;
    let created = ok(
        "household",
        frontdesk
            .post(
                "/api/v1/household-files",
                &json!({"unit": "T1-001", "occupancy": "owner", "residents": [{"name": "Wang"}], "move_in": "2025-01-01"}),
            )
            .await?,
    )
    .await?;
    let id = created["household"]["id"]
        .as_str()
        .context("id")?
        .to_owned();
    server::admin::create_user(
        &relay.relay,
        &server::schema::UserId::new("cashier2")?,
        "Second cashier",
        "a long password 2",
        server::schema::Role::Cashier,
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let second = Api::login(&relay.url, "cashier2", "a long password 2").await?;
    let first = relay.api("cashier").await?;
    for round in 0..5 {
        run(&manager, &format!("2026-{:02}", round + 1)).await?;
        // Each pays the whole 250.00 bill at the same moment.
        let (a, b) = tokio::join!(pay(&first, &id, 25_000), pay(&second, &id, 25_000));
        let (a, b) = (a?, b?);
        let allocated = |r: &Value| -> i64 {
            r["receipt"]["allocations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x[1].as_i64().unwrap_or(0))
                .sum()
        };
        assert_eq!(
            allocated(&a) + allocated(&b),
            if round == 0 { 25_000 } else { 0 },
            "round {round}"
        );
    }
    let (_, st) = first.get(&format!("/api/v1/fees/households/{id}")).await?;
    // 10 payments of 250.00 against 5 bills of 250.00: 1,250.00 credit, and
    // each bill paid exactly once.
    assert_eq!(st["credit_fen"], 125_000);
    assert_eq!(st["arrears_fen"], 0);
    for b in st["bills"].as_array().into_iter().flatten() {
        assert_eq!(b["outstanding_fen"], 0, "{b}");
    }
    let mut receipts: Vec<String> = st["payments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["receipt"].as_str().unwrap_or_default().to_owned())
        .collect();
    receipts.sort();
    let expected: Vec<String> = (1..=10).map(|n| format!("RC-2025-{n:06}")).collect();
    assert_eq!(receipts, expected);
    Ok(())
}

#[tokio::test]
async fn reminders_and_posted_charges_land_on_the_household_file() -> Result<()> {
    static NOW: AtomicI64 = AtomicI64::new(0);
    let clock = TestClock::new(&NOW);
    let relay = start(clock).await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 1).await?;
    items(&manager).await?;
    ok(
        "item",
        manager
            .post(
                "/api/v1/fees/items",
                &json!({"code": "water", "name_zh": "水费", "name_en": "water", "kind": "metered", "rate_fen": 0}),
            )
            .await?,
    )
    .await?;
    let frontdesk = relay.api("frontdesk").await?;
    let created = ok(
        "household",
        frontdesk
            .post(
                "/api/v1/household-files",
                &json!({"unit": "T1-001", "occupancy": "tenant", "residents": [{"name": "Li", "phone": "13900001111"}], "move_in": "2025-01-01"}),
            )
            .await?,
    )
    .await?;
    let id = created["household"]["id"]
        .as_str()
        .context("id")?
        .to_owned();
    let cashier = relay.api("cashier").await?;
    let water = json!({"household": id, "item": "water", "period": "2025-11", "amount_fen": 4_500,
                       "note": "meter 120 → 135", "request_id": "water-2025-11-T1-001"});
    let first = ok(
        "charge",
        cashier.post("/api/v1/fees/charges", &water).await?,
    )
    .await?;
    let again = ok(
        "charge",
        cashier.post("/api/v1/fees/charges", &water).await?,
    )
    .await?;
    assert_eq!(first["bill"], again["bill"], "a retried post bills once");
    // The monthly items are billed by the run, never posted by hand.
    let mut fee = water.clone();
    fee["item"] = json!("property_fee");
    fee["request_id"] = json!("fee-by-hand");
    let (status, _) = cashier.post("/api/v1/fees/charges", &fee).await?;
    assert_eq!(status, 409);

    let (status, _) = cashier
        .post(
            "/api/v1/fees/reminders",
            &json!({"household": id, "channel": "fax", "result": "sent"}),
        )
        .await?;
    assert_eq!(status, 409, "an unknown channel is refused");
    ok(
        "reminder",
        frontdesk
            .post(
                "/api/v1/fees/reminders",
                &json!({"household": id, "channel": "phone", "result": "will pay on Friday 周五缴费"}),
            )
            .await?,
    )
    .await?;
    let (_, st) = cashier
        .get(&format!("/api/v1/fees/households/{id}"))
        .await?;
    assert_eq!(st["arrears_fen"], 4_500);
    assert_eq!(st["reminders"][0]["by"], "frontdesk");
    assert_eq!(st["reminders"][0]["channel"], "phone");
    let (_, fd) = frontdesk
        .get(&format!("/api/v1/fees/households/{id}"))
        .await?;
    assert_eq!(fd["in_arrears"], true);
    Ok(())
}

/// A paid repair collected at the desk: its charge and receipt are on the
/// household's statement, in report 16 under its own item and in the
/// cashier's close, each exactly once; a paid order of a public area posts
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_repair_collected_posts_to_the_household_ledger_once() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    setup(&manager, 2).await?;
    let desk = relay.api("frontdesk").await?;
    let hid = crate::property::wang_fang(&desk).await?;
    let eng1 = relay.api("eng1").await?;
    let cashier = relay.api("cashier").await?;

    let mut orders = Vec::new();
    for place in [
        json!({"household": hid}),
        json!({"location": "T2 车库 garage"}),
    ] {
        let mut body = json!({
            "kind": "repair", "title": "换水龙头 new tap", "category": "plumbing", "paid": true,
            "caller": {"name": "王芳", "phone": "13912345678", "read_back": true},
        });
        for (k, v) in place.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let (status, t) = desk.post("/api/v1/tickets", &body).await?;
        ensure!(status == 201, "ticket: {t}");
        let id = t["id"].as_str().unwrap_or_default().to_owned();
        let steps = [
            (&desk, "assign", json!({"assignee": "eng1"})),
            (&eng1, "accept", json!({})),
            (&eng1, "start", json!({})),
            (
                &eng1,
                "complete",
                json!({"result": "换了水龙头", "labour_min": 30, "quote_fen": 8_050,
                       "materials": [{"name": "水龙头 tap", "qty": 1, "unit_fen": 3_000}]}),
            ),
            (&desk, "return", json!({"copy_received": true})),
            (
                &cashier,
                "collect",
                json!({"amount_fen": 8_050, "receipt": "R-1", "method": "wechat"}),
            ),
        ];
        for (who, action, data) in steps {
            let outcome = who.act(&id, action, data).await?;
            ensure!(outcome == "accepted", "{action}: {outcome}");
        }
        orders.push(id);
    }
    let t = desk.ticket(&orders[0]).await?;
    assert_eq!(t["status"], "PAID");

    let (status, st) = cashier
        .get(&format!("/api/v1/fees/households/{hid}"))
        .await?;
    assert_eq!(status, 200, "{st}");
    let bills = st["bills"].as_array().cloned().unwrap_or_default();
    assert_eq!(bills.len(), 1, "{st}");
    assert_eq!(bills[0]["item"], "paid_repair");
    assert_eq!(bills[0]["amount_fen"], 8_050);
    assert_eq!(bills[0]["outstanding_fen"], 0);
    assert!(
        bills[0]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("RO-")),
        "the bill names the order: {}",
        bills[0]["note"]
    );
    let payments = st["payments"].as_array().cloned().unwrap_or_default();
    assert_eq!(payments.len(), 1, "{st}");
    assert_eq!(payments[0]["amount_fen"], 8_050);
    assert_eq!(payments[0]["method"], "wechat");
    assert!(
        payments[0]["receipt"]
            .as_str()
            .is_some_and(|r| r.starts_with("RC-") && r.ends_with("-000001"))
    );
    assert_eq!(
        (st["arrears_fen"].clone(), st["credit_fen"].clone()),
        (json!(0), json!(0))
    );

    // Report 16: the month's receivable and received hold it once, under
    // its own item; the household owes nothing.
    let report = ok(
        "report",
        manager.get("/api/v1/reports/fee-collection").await?,
    )
    .await?;
    assert_eq!(stat(&report, "receivable"), "80.50", "{report}");
    assert_eq!(stat(&report, "received"), "80.50");
    assert_eq!(stat(&report, "billed_households"), 1);
    assert_eq!(stat(&report, "households_in_arrears"), 0);
    // The cashier's close: both collections on the ticket side, none again
    // among the fee receipts.
    let close = ok("close", cashier.get("/api/v1/reports/cashier-close").await?).await?;
    assert_eq!(stat(&close, "collections"), 2, "{close}");
    assert_eq!(stat(&close, "collected (fen)"), 16_100);
    assert_eq!(stat(&close, "fee receipts"), 0);
    assert_eq!(stat(&close, "fee received (fen)"), 0);

    // A method the ledger does not know is refused before it is collected.
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "灯 light", "household": hid,
                    "category": "electrical", "paid": true}),
        )
        .await?;
    ensure!(status == 201, "{t}");
    let id = t["id"].as_str().unwrap_or_default().to_owned();
    for (who, action, data) in [
        (&desk, "assign", json!({"assignee": "eng1"})),
        (&eng1, "accept", json!({})),
        (&eng1, "start", json!({})),
        (
            &eng1,
            "complete",
            json!({"result": "ok", "labour_min": 5, "quote_fen": 1_000,
                   "materials": [{"name": "灯泡 bulb", "qty": 1, "unit_fen": 500}]}),
        ),
        (&desk, "return", json!({"copy_received": true})),
    ] {
        ensure!(who.act(&id, action, data).await? == "accepted", "{action}");
    }
    let outcome = cashier
        .act(
            &id,
            "collect",
            json!({"amount_fen": 1_000, "receipt": "R-2", "method": "IOU"}),
        )
        .await;
    assert!(!matches!(outcome.as_deref(), Ok("accepted")), "{outcome:?}");
    let (_, st) = cashier
        .get(&format!("/api/v1/fees/households/{hid}"))
        .await?;
    assert_eq!(st["payments"].as_array().map(Vec::len), Some(1));
    Ok(())
}

/// Report 17 "as of" a cut-off shows the file, the tickets and the ledger as
/// recorded by then: an edit, a payment and a ticket's progress made later
/// are not in it; before the household was on file there is no extract.
/// It exports as CSV and XLSX, and prints as of the cut-off too.
#[tokio::test]
async fn report_17_as_of_a_cut_off_shows_only_what_was_recorded_by_then() -> Result<()> {
    static NOW: AtomicI64 = AtomicI64::new(0);
    let clock = TestClock::new(&NOW);
    let relay = start(clock).await?;
    let manager = relay.api("manager").await?;
    let cashier = relay.api("cashier").await?;
    let desk = relay.api("frontdesk").await?;
    setup(&manager, 2).await?;
    items(&manager).await?;
    // Day one, from 09:00: the household, the month's bills, a complaint.
    let hid = crate::property::wang_fang(&desk).await?;
    run(&manager, "2025-12").await?;
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "complaint", "title": "楼上噪音 noise upstairs", "household": hid}),
        )
        .await?;
    ensure!(status == 201, "{t}");
    let ticket = t["id"].as_str().context("ticket id")?.to_owned();
    // Day two: the file is edited, the cashier takes 100.00, the complaint
    // is handed to its department.
    clock.set(local(2025, 12, 2, 10));
    let (_, f) = desk.get(&format!("/api/v1/household-files/{hid}")).await?;
    let mut edited = f["household"].clone();
    edited["notes"] = json!("养狗 has a dog");
    let (status, body) = desk
        .put(
            &format!("/api/v1/household-files/{hid}"),
            &json!({"version": 1, "household": edited}),
        )
        .await?;
    ensure!(status == 200, "{body}");
    let receipt = pay(&cashier, &hid, 10_000).await?;
    let receipt = receipt["receipt"]["receipt"]
        .as_str()
        .context("receipt number")?
        .to_owned();

    let extract = |q: &str| format!("/api/v1/household-files/{hid}/extract{q}");
    let cut = "?as_of=2025-12-01T18:00";
    let then = ok("extract then", manager.get(&extract(cut)).await?).await?;
    let now = ok("extract now", manager.get(&extract("")).await?).await?;
    ensure!(then["household"]["version"] == 1 && now["household"]["version"] == 2);
    ensure!(
        then["household"]["notes"] == "" && now["household"]["notes"] == "养狗 has a dog",
        "the file as it was: {}",
        then["household"]
    );
    ensure!(then["history"].as_array().map(Vec::len) == Some(1));
    ensure!(then["ledger"]["payments"].as_array().map(Vec::len) == Some(0));
    ensure!(now["ledger"]["payments"].as_array().map(Vec::len) == Some(1));
    let owed = |x: &Value| x["ledger"]["arrears_fen"].as_i64().unwrap_or(-1);
    ensure!(
        owed(&then) > 0 && owed(&then) - owed(&now) == 10_000,
        "arrears then {} and now {}",
        owed(&then),
        owed(&now)
    );
    let tickets = then["tickets"].as_array().context("tickets")?;
    ensure!(tickets.len() == 1 && tickets[0]["id"] == ticket.as_str());
    // The front desk sees, of the fees, only that the household owed.
    let desk_then = ok("desk extract", desk.get(&extract(cut)).await?).await?;
    ensure!(
        desk_then["ledger"] == json!({"in_arrears": true}),
        "{desk_then}"
    );
    // Before the household was on file, there is no extract.
    let (status, _) = manager.get(&extract("?as_of=2025-12-01T08:00")).await?;
    ensure!(status == 404);

    let (status, csv) = manager
        .get_text(&extract(&format!("{cut}&format=csv")))
        .await?;
    ensure!(status == 200, "{csv}");
    for want in [
        "一户一档",
        "T1-001",
        "王芳",
        "楼上噪音 noise upstairs",
        "收款",
    ] {
        ensure!(csv.contains(want), "{want} missing from the CSV:\n{csv}");
    }
    ensure!(
        !csv.contains(&receipt),
        "a later payment in the CSV as of the cut-off"
    );
    let (_, csv_now) = manager.get_text(&extract("?format=csv")).await?;
    ensure!(csv_now.contains(&receipt), "{csv_now}");
    let (status, xlsx) = manager
        .get_text(&extract(&format!("{cut}&format=xlsx")))
        .await?;
    ensure!(status == 200 && xlsx.starts_with("PK"), "an XLSX workbook");
    let (status, _) = manager.get(&extract("?format=pdf")).await?;
    ensure!(status == 400);
    let (status, page) = manager
        .get_text(&format!("/households/{hid}/print{cut}"))
        .await?;
    ensure!(status == 200 && page.contains("T1-001") && !page.contains(&receipt));
    Ok(())
}
