//! The ledger on a real store: bill runs repeated and killed midway, the
//! number series, allocation, credit, refunds and adjustments. Every amount
//! expected here is worked out by hand in the comments.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rusqlite::Connection;
use schema::DocId;

use super::*;
use crate::property::{HouseholdInput, Occupancy, Person, insert_files};
use crate::store::Db;

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 2, 0, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn period(s: &str) -> Period {
    s.parse().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
    /// 100.00 m², in since 2025; 80.00 m², in on 2026-01-17 with one space.
    a: DocId,
    b: DocId,
}

fn person(name: &str) -> Person {
    Person {
        name: name.into(),
        relation: String::new(),
        phone: String::new(),
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.sqlite3")).unwrap();
    let ids = db
        .write_blocking(|tx| {
            tx.execute_batch(
                "INSERT INTO property(id, name, created_by, created_at) VALUES (1, 'P', 'm', '2025-01-01T00:00:00Z');
                 INSERT INTO buildings(code, name) VALUES ('T1', 'T1');
                 INSERT INTO units(code, building, area_centi_m2) VALUES ('T1-101', 'T1', 10000), ('T1-102', 'T1', 8000);",
            )?;
            put_item(tx, &Item {
                code: "property_fee".into(), name_zh: "物业费".into(), name_en: "property fee".into(),
                kind: ItemKind::PerArea, rate_fen: 250,
            })?;
            put_item(tx, &Item {
                code: "parking".into(), name_zh: "停车费".into(), name_en: "parking".into(),
                kind: ItemKind::PerSpace, rate_fen: 15_000,
            })?;
            put_item(tx, &Item {
                code: "water".into(), name_zh: "水费".into(), name_en: "water".into(),
                kind: ItemKind::Metered, rate_fen: 0,
            })?;
            let a = HouseholdInput {
                unit: "T1-101".into(), occupancy: Occupancy::Owner, residents: vec![person("Wang")],
                move_in: day(2025, 3, 1), move_out: None, vehicles: vec![], parking: vec![], notes: String::new(),
            };
            let b = HouseholdInput {
                unit: "T1-102".into(), occupancy: Occupancy::Tenant, residents: vec![person("Li")],
                move_in: day(2026, 1, 17), move_out: None, vehicles: vec![], parking: vec!["P-7".into()],
                notes: String::new(),
            };
            insert_files(tx, &[a, b], "admin", at(2025, 12, 1))
        })
        .unwrap();
    Fixture {
        _dir: dir,
        db,
        a: ids[0],
        b: ids[1],
    }
}

fn read<R: Send + 'static>(db: &Db, f: impl FnOnce(&Connection) -> StoreResult<R>) -> R {
    db.read_blocking(f).unwrap()
}

fn bill_numbers(db: &Db) -> Vec<String> {
    read(db, |c| {
        let mut st = c.prepare("SELECT number FROM bills ORDER BY number")?;
        Ok(st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?)
    })
}

#[test]
fn a_bill_run_prorates_and_bills_each_period_once() {
    let f = fixture();
    let run =
        f.db.write_blocking(|tx| bill_run(tx, period("2026-01"), "m", at(2026, 1, 31), TZ))
            .unwrap();
    // A: 100.00 m² × 2.50 = 250.00. B: in on the 17th, 15 of 31 days:
    // fee 80.00 × 2.50 = 200.00 → 200 × 15/31 = 96.774… → 96.77;
    // parking 150.00 × 15/31 = 72.580… → 72.58.
    assert_eq!(run.billed, 3);
    assert_eq!(run.already, 0);
    let amounts = read(&f.db, |c| {
        let mut st = c.prepare("SELECT amount_fen FROM bills ORDER BY number")?;
        Ok(st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?)
    });
    let mut sorted = amounts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![7_258, 9_677, 25_000]);

    let again =
        f.db.write_blocking(|tx| bill_run(tx, period("2026-01"), "m", at(2026, 2, 1), TZ))
            .unwrap();
    assert_eq!((again.billed, again.already), (0, 3));
    assert_eq!(
        bill_numbers(&f.db),
        ["BL-2026-000001", "BL-2026-000002", "BL-2026-000003"]
    );
}

#[test]
fn a_run_killed_midway_leaves_no_bill_and_no_number_behind() {
    let f = fixture();
    // The run is cut off after billing (the transaction never commits).
    let killed = f.db.write_blocking(|tx| {
        let r = bill_run(tx, period("2026-02"), "m", at(2026, 2, 28), TZ)?;
        assert_eq!(r.billed, 3);
        Err::<(), _>(StoreError::Corrupt("killed".into()))
    });
    assert!(killed.is_err());
    assert!(bill_numbers(&f.db).is_empty());
    f.db.write_blocking(|tx| bill_run(tx, period("2026-02"), "m", at(2026, 2, 28), TZ))
        .unwrap();
    f.db.write_blocking(|tx| bill_run(tx, period("2026-02"), "m", at(2026, 2, 28), TZ))
        .unwrap();
    assert_eq!(
        bill_numbers(&f.db),
        ["BL-2026-000001", "BL-2026-000002", "BL-2026-000003"]
    );
}

#[test]
fn payments_go_to_the_oldest_bills_and_the_rest_is_credit() {
    let f = fixture();
    let a = f.a;
    for (p, t) in [("2026-01", at(2026, 1, 31)), ("2026-02", at(2026, 2, 28))] {
        f.db.write_blocking(move |tx| bill_run(tx, period(p), "m", t, TZ))
            .unwrap();
    }
    // A owes 250.00 for January and 250.00 for February.
    let r =
        f.db.write_blocking(move |tx| {
            record_payment(
                tx,
                a,
                30_000,
                Method::Wechat,
                None,
                None,
                "cashier",
                at(2026, 3, 2),
                TZ,
            )
        })
        .unwrap();
    assert_eq!(r.receipt, "RC-2026-000001");
    assert_eq!(
        r.allocations.iter().map(|x| x.1).collect::<Vec<_>>(),
        [25_000, 5_000]
    );
    assert_eq!(r.credit_fen, 0);
    // 300.00 more: February's last 200.00, and 100.00 is credit.
    let r =
        f.db.write_blocking(move |tx| {
            record_payment(
                tx,
                a,
                30_000,
                Method::Cash,
                None,
                Some("req-1"),
                "cashier",
                at(2026, 3, 3),
                TZ,
            )
        })
        .unwrap();
    assert_eq!(r.allocations.iter().map(|x| x.1).sum::<i64>(), 20_000);
    assert_eq!(r.credit_fen, 10_000);
    // The same request again records nothing new.
    let again =
        f.db.write_blocking(move |tx| {
            record_payment(
                tx,
                a,
                30_000,
                Method::Cash,
                None,
                Some("req-1"),
                "cashier",
                at(2026, 3, 3),
                TZ,
            )
        })
        .unwrap();
    assert!(again.repeated);
    assert_eq!(again.receipt, r.receipt);
    // March's bill is paid from the credit at once: 250.00 − 100.00 = 150.00 open.
    let run =
        f.db.write_blocking(|tx| bill_run(tx, period("2026-03"), "m", at(2026, 3, 31), TZ))
            .unwrap();
    assert_eq!(run.credit_applied, 10_000);
    let (credit_now, open) = read(&f.db, move |c| {
        Ok((credit(c, &a.to_string())?, open_bills(c, &a.to_string())?))
    });
    assert_eq!(credit_now, 0);
    assert_eq!(open.iter().map(|x| x.1).collect::<Vec<_>>(), [15_000]);
}

#[test]
fn report_16_exports_as_a_workbook_with_its_formulas() {
    use calamine::{Data, Reader, Xlsx};
    let f = fixture();
    f.db.write_blocking(|tx| bill_run(tx, period("2026-01"), "m", at(2026, 1, 31), TZ))
        .unwrap();
    let r = read(&f.db, |c| {
        crate::reports::fee_collection::compute(c, at(2026, 1, 31), at(2026, 1, 31), TZ)
    });
    let bytes = crate::reports::xlsx::to_xlsx(&r).unwrap();
    let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<String> = sheet
        .rows()
        .flat_map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>())
        .collect();
    assert!(
        cells.iter().any(|c| c == "本期实收 ÷ 本期应收"),
        "{cells:?}"
    );
    // Two households billed, none paid: 0.00% and 2 households in arrears.
    let row = sheet
        .rows()
        .find(|r| r.first() == Some(&Data::String("欠费户数 / households_in_arrears".into())))
        .unwrap();
    assert_eq!(row[1], Data::Float(2.0));
}

#[test]
fn refunds_and_adjustments_reverse_and_never_exceed() {
    let f = fixture();
    let b = f.b;
    f.db.write_blocking(|tx| bill_run(tx, period("2026-01"), "m", at(2026, 1, 31), TZ))
        .unwrap();
    // B owes 96.77 + 72.58 = 169.35; pays 200.00 → 30.65 credit.
    let r =
        f.db.write_blocking(move |tx| {
            record_payment(
                tx,
                b,
                20_000,
                Method::Alipay,
                None,
                None,
                "cashier",
                at(2026, 2, 1),
                TZ,
            )
        })
        .unwrap();
    assert_eq!(r.credit_fen, 3_065);
    let too_much = f.db.write_blocking(move |tx| {
        adjust(
            tx,
            b,
            AdjustmentKind::Refund,
            None,
            3_066,
            "moving",
            "manager",
            at(2026, 2, 2),
            TZ,
        )
    });
    assert!(matches!(too_much, Err(StoreError::Conflict(_))));
    let n =
        f.db.write_blocking(move |tx| {
            adjust(
                tx,
                b,
                AdjustmentKind::Refund,
                None,
                3_065,
                "moving",
                "manager",
                at(2026, 2, 2),
                TZ,
            )
        })
        .unwrap();
    assert_eq!(n, "AD-2026-000001");
    assert_eq!(read(&f.db, move |c| credit(c, &b.to_string())), 0);
    // A water charge of 45.00, reduced by 5.00 after a meter misread.
    let bill =
        f.db.write_blocking(move |tx| {
            post_charge(
                tx,
                b,
                "water",
                period("2026-02"),
                4_500,
                "meter 120→135",
                "water:feb:b",
                "cashier",
                at(2026, 2, 3),
                TZ,
            )
        })
        .unwrap();
    let again =
        f.db.write_blocking(move |tx| {
            post_charge(
                tx,
                b,
                "water",
                period("2026-02"),
                4_500,
                "meter 120→135",
                "water:feb:b",
                "cashier",
                at(2026, 2, 3),
                TZ,
            )
        })
        .unwrap();
    assert_eq!(bill, again);
    let bill2 = bill.clone();
    let over = f.db.write_blocking(move |tx| {
        adjust(
            tx,
            b,
            AdjustmentKind::Adjustment,
            Some(&bill2),
            4_501,
            "misread",
            "manager",
            at(2026, 2, 4),
            TZ,
        )
    });
    assert!(over.is_err());
    let bill3 = bill.clone();
    f.db.write_blocking(move |tx| {
        adjust(
            tx,
            b,
            AdjustmentKind::Adjustment,
            Some(&bill3),
            500,
            "misread",
            "manager",
            at(2026, 2, 4),
            TZ,
        )
    })
    .unwrap();
    let open = read(&f.db, move |c| open_bills(c, &b.to_string()));
    assert_eq!(open, vec![(bill, 4_000)]);
    let st = read(&f.db, move |c| statement(c, b));
    assert_eq!(st["arrears_fen"], 4_000);
    assert_eq!(st["adjustments"].as_array().unwrap().len(), 2);
}

#[test]
fn a_paid_orders_collection_posts_once_and_leaves_credit_alone() {
    let f = fixture();
    let a = f.a;
    // A holds 100.00 of credit: a paid repair paid at the desk must not
    // spend it, nor pay any other bill with the repair's money.
    f.db.write_blocking(move |tx| {
        record_payment(
            tx,
            a,
            10_000,
            Method::Cash,
            None,
            None,
            "cashier",
            at(2026, 1, 5),
            TZ,
        )
    })
    .unwrap();
    let ticket = DocId::random();
    let c = relay_core::Collection {
        event: schema::EventId::random(),
        household: a,
        kind: schema::Kind::Repair,
        serial: None,
        amount: schema::Fen::new(8_000),
        method: "wechat".into(),
        by: schema::UserId::new("cashier").unwrap(),
    };
    let c2 = c.clone();
    let first =
        f.db.write_blocking(move |tx| post_collection(tx, ticket, &c2, at(2026, 1, 20), TZ))
            .unwrap();
    assert_eq!(
        first,
        Some(Posted {
            bill: "BL-2026-000001".into(),
            receipt: "RC-2026-000002".into()
        })
    );
    // The commit repeated (a retry): nothing more, no number taken.
    let c3 = c.clone();
    let again =
        f.db.write_blocking(move |tx| post_collection(tx, ticket, &c3, at(2026, 1, 21), TZ))
            .unwrap();
    assert_eq!(again, None);
    assert_eq!(bill_numbers(&f.db), ["BL-2026-000001"]);
    let st = read(&f.db, move |c| statement(c, a));
    assert_eq!(st["bills"][0]["item"], "paid_repair");
    assert_eq!(st["bills"][0]["period"], "2026-01");
    assert_eq!(st["bills"][0]["outstanding_fen"], 0);
    assert_eq!(st["payments"].as_array().map(Vec::len), Some(2));
    assert_eq!(st["payments"][1]["method"], "wechat");
    assert_eq!(st["credit_fen"], 10_000, "the credit is untouched");
    assert_eq!(st["arrears_fen"], 0);

    // A method the ledger does not know, or a household not in the
    // register, posts nothing (and does not fail the ticket's commit).
    let mut odd = c.clone();
    odd.event = schema::EventId::random();
    odd.method = "IOU".into();
    let mut stranger = c;
    stranger.event = schema::EventId::random();
    stranger.household = DocId::random();
    let none =
        f.db.write_blocking(move |tx| {
            Ok((
                post_collection(tx, ticket, &odd, at(2026, 1, 22), TZ)?,
                post_collection(tx, ticket, &stranger, at(2026, 1, 22), TZ)?,
            ))
        })
        .unwrap();
    assert_eq!(none, (None, None));
    assert_eq!(bill_numbers(&f.db), ["BL-2026-000001"]);
}
