//! Report 16, property-fee collection (物业费收缴), read from the fee ledger
//! as it stood at the cut-off (entries are kept with their times and never
//! edited, so a report "as of" a past moment is reproducible).
//!
//! For the month M the period falls in (DOMAIN.md report 16):
//! - 户收费率 = (billed households − households in arrears) / billed
//!   households, where a billed household has a bill for M and is in
//!   arrears when one of its M bills is not paid off at the cut-off;
//! - 收费率 = current-period received / current-period receivable: what
//!   was allocated to M's bills by the cut-off over what they ask for
//!   (their amounts less approved adjustments);
//! - 清缴率 = arrears recovered / (arrears recovered + arrears still
//!   outstanding): bills of periods before M, money allocated to them from
//!   M's first day to the cut-off, over that plus what they still ask.
//!
//! Every rate is exact integer arithmetic in basis points, shown to 0.01%.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;
use schema::doc::rfc3339;
use serde_json::{Value, json};

use super::{Chart, Report, Series, Table};
use crate::fees::{Period, rate_bp, show_fen, show_rate};
use crate::settings;
use crate::store::StoreResult;

struct Bill {
    household: String,
    unit: String,
    building: String,
    item: String,
    period: Period,
    amount: i64,
    adjusted: i64,
    /// Allocated before M's first day.
    paid_before: i64,
    /// Allocated from M's first day to the cut-off.
    paid_in: i64,
}

impl Bill {
    fn outstanding(&self) -> i64 {
        self.amount - self.adjusted - self.paid_before - self.paid_in
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    receivable: i64,
    received: i64,
    recovered: i64,
    still_owed: i64,
}

fn load(conn: &Connection, as_of: &str, month_start: &str) -> StoreResult<Vec<Bill>> {
    let mut st = conn.prepare(
        "SELECT b.number, b.household, f.unit, u.building, b.item, b.period, b.amount_fen,
           coalesce((SELECT sum(amount_fen) FROM adjustments d WHERE d.bill = b.number AND d.at <= ?1), 0),
           coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number AND a.at < ?2 AND a.at <= ?1), 0),
           coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number AND a.at >= ?2 AND a.at <= ?1), 0)
         FROM bills b JOIN household_files f ON f.doc_id = b.household JOIN units u ON u.code = f.unit
         WHERE b.created_at <= ?1 ORDER BY b.number",
    )?;
    let rows = st
        .query_map([as_of, month_start], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(household, unit, building, item, period, amount, adjusted, before, inn)| {
                Some(Bill {
                    household,
                    unit,
                    building,
                    item,
                    period: period.parse().ok()?,
                    amount,
                    adjusted,
                    paid_before: before,
                    paid_in: inn,
                })
            },
        )
        .collect())
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn rate_cell(num: i64, den: i64) -> Value {
    Value::String(show_rate(rate_bp(num, den)))
}

fn months_between(a: Period, b: Period) -> i64 {
    b.index() - a.index()
}

const AGING: &[(&str, &str, i64, i64)] = &[
    ("current", "当期", 0, 0),
    ("1-2m", "1–2个月", 1, 2),
    ("3-5m", "3–5个月", 3, 5),
    ("6-11m", "6–11个月", 6, 11),
    ("12m+", "12个月以上", 12, i64::MAX),
];

/// The cashier's daily close, fee side: every receipt and reversing entry of
/// the fee ledger made in `[from, as_of]`, except the receipts of paid
/// orders' collections: the ticket side lists those (each once), so the
/// close counts every receipt exactly once.
///
/// # Errors
/// Storage errors.
pub(crate) fn add_fee_receipts(
    conn: &Connection,
    r: &mut Report,
    from: DateTime<Utc>,
    as_of: DateTime<Utc>,
) -> StoreResult<()> {
    let (from, as_of) = (rfc3339(from), rfc3339(as_of));
    let mut st = conn.prepare(
        "SELECT p.receipt, f.unit, p.amount_fen, p.method, p.cashier, p.at FROM payments p
         JOIN household_files f ON f.doc_id = p.household
         WHERE p.at >= ?1 AND p.at <= ?2 AND coalesce(p.request_id, '') NOT LIKE 'ticket:%'
         ORDER BY p.receipt",
    )?;
    let rows = st
        .query_map([&from, &as_of], |x| {
            Ok((
                x.get::<_, String>(0)?,
                x.get::<_, String>(1)?,
                x.get::<_, i64>(2)?,
                x.get::<_, String>(3)?,
                x.get::<_, String>(4)?,
                x.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut t = Table::new(
        ("物业费收款", "Fee receipts"),
        &[
            ("receipt", "收据号", "Receipt"),
            ("unit", "单元", "Unit"),
            ("amount_fen", "金额（分）", "Amount (fen)"),
            ("amount", "金额", "Amount"),
            ("method", "方式", "Method"),
            ("cashier", "收银员", "Cashier"),
            ("at", "时间", "At"),
        ],
    );
    let mut total = 0;
    for (receipt, unit, fen, method, cashier, at) in rows {
        total += fen;
        t.rows.push(vec![
            json!(receipt),
            json!(unit),
            json!(fen),
            json!(show_fen(fen)),
            json!(method),
            json!(cashier),
            json!(at),
        ]);
    }
    r.stat("fee receipts", "物业费收款笔数", t.rows.len());
    r.stat("fee received (fen)", "物业费收款合计（分）", total);
    r.tables.push(t);
    let mut st = conn.prepare(
        "SELECT d.number, f.unit, d.kind, d.bill, d.amount_fen, d.reason, d.approved_by, d.at FROM adjustments d
         JOIN household_files f ON f.doc_id = d.household
         WHERE d.at >= ?1 AND d.at <= ?2 ORDER BY d.number",
    )?;
    let rows = st
        .query_map([&from, &as_of], |x| {
            Ok(vec![
                json!(x.get::<_, String>(0)?),
                json!(x.get::<_, String>(1)?),
                json!(x.get::<_, String>(2)?),
                json!(x.get::<_, Option<String>>(3)?),
                json!(show_fen(x.get::<_, i64>(4)?)),
                json!(x.get::<_, String>(5)?),
                json!(x.get::<_, String>(6)?),
                json!(x.get::<_, String>(7)?),
            ])
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut t = Table::new(
        ("物业费退款和调整", "Fee refunds and adjustments"),
        &[
            ("number", "编号", "Number"),
            ("unit", "单元", "Unit"),
            ("kind", "类型", "Kind"),
            ("bill", "账单", "Bill"),
            ("amount", "金额", "Amount"),
            ("reason", "原因", "Reason"),
            ("approver", "批准人", "Approver"),
            ("at", "时间", "At"),
        ],
    );
    t.rows = rows;
    r.tables.push(t);
    Ok(())
}

/// Computes report 16 for the month `from` falls in, as of `as_of`.
///
/// # Errors
/// Storage errors.
pub(crate) fn compute(
    conn: &Connection,
    as_of: DateTime<Utc>,
    from: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<Report> {
    let month = Period::of(settings::local_date(from, tz));
    let month_start =
        settings::local_to_utc(month.first_day().and_time(chrono::NaiveTime::MIN), tz);
    let bills = load(conn, &rfc3339(as_of), &rfc3339(month_start))?;
    let names: BTreeMap<String, String> = crate::fees::ledger::items(conn)?
        .into_iter()
        .map(|i| (i.code, format!("{} {}", i.name_zh, i.name_en)))
        .collect();

    let mut r = Report {
        name: "fee-collection",
        title: "Property-fee collection",
        title_zh: "物业费收缴",
        period: super::FEE_PERIOD,
        time_zone: tz.name(),
        as_of: rfc3339(as_of),
        from: rfc3339(month_start),
        summary: Vec::new(),
        tables: Vec::new(),
        charts: Vec::new(),
        changes_since: Vec::new(),
    };

    // Per building and item, and in total.
    let mut by_key: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut billed: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    let mut owing: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    let mut total = Tally::default();
    let (mut all_billed, mut all_owing) = (BTreeSet::new(), BTreeSet::new());
    for b in &bills {
        let key = (b.building.clone(), b.item.clone());
        let t = by_key.entry(key.clone()).or_default();
        if b.period == month {
            t.receivable += b.amount - b.adjusted;
            t.received += b.paid_before + b.paid_in;
            total.receivable += b.amount - b.adjusted;
            total.received += b.paid_before + b.paid_in;
            billed.entry(key.clone()).or_default().insert(&b.household);
            all_billed.insert(&b.household);
            if b.outstanding() > 0 {
                owing.entry(key).or_default().insert(&b.household);
                all_owing.insert(&b.household);
            }
        } else if b.period < month {
            t.recovered += b.paid_in;
            t.still_owed += b.outstanding();
            total.recovered += b.paid_in;
            total.still_owed += b.outstanding();
        }
    }
    let (hb, ha) = (count(all_billed.len()), count(all_owing.len()));
    r.stat("month", "月份", month.to_string());
    r.stat("billed_households", "计费户数", hb);
    r.stat("households_in_arrears", "欠费户数", ha);
    r.stat(
        "household_collection_rate",
        "户收费率",
        rate_cell(hb - ha, hb),
    );
    r.stat("receivable", "本期应收（元）", show_fen(total.receivable));
    r.stat("received", "本期实收（元）", show_fen(total.received));
    r.stat(
        "collection_rate",
        "收费率",
        rate_cell(total.received, total.receivable),
    );
    r.stat(
        "arrears_recovered",
        "清欠收回（元）",
        show_fen(total.recovered),
    );
    r.stat(
        "arrears_outstanding",
        "往期仍欠（元）",
        show_fen(total.still_owed),
    );
    r.stat(
        "clearance_rate",
        "清缴率",
        rate_cell(total.recovered, total.recovered + total.still_owed),
    );

    let mut formulas = Table::new(
        ("计算公式", "Formulas"),
        &[
            ("rate", "指标", "Rate"),
            ("formula_zh", "公式", "Formula (Chinese)"),
            ("formula_en", "Formula", "Formula (English)"),
            ("numerator", "分子", "Numerator"),
            ("denominator", "分母", "Denominator"),
            ("value", "结果", "Value"),
        ],
    );
    formulas.rows.push(vec![
        json!("户收费率"),
        json!("（计费户数 − 欠费户数）÷ 计费户数"),
        json!("(billed households − households in arrears) / billed households"),
        json!(hb - ha),
        json!(hb),
        rate_cell(hb - ha, hb),
    ]);
    formulas.rows.push(vec![
        json!("收费率"),
        json!("本期实收 ÷ 本期应收"),
        json!("current-period received / current-period receivable"),
        json!(show_fen(total.received)),
        json!(show_fen(total.receivable)),
        rate_cell(total.received, total.receivable),
    ]);
    formulas.rows.push(vec![
        json!("清缴率"),
        json!("清欠收回 ÷（清欠收回 + 往期仍欠）"),
        json!("arrears recovered / (arrears recovered + arrears still outstanding)"),
        json!(show_fen(total.recovered)),
        json!(show_fen(total.recovered + total.still_owed)),
        rate_cell(total.recovered, total.recovered + total.still_owed),
    ]);
    r.tables.push(formulas);

    let mut t = Table::new(
        ("按楼栋和收费项目", "By building and fee item"),
        &[
            ("building", "楼栋", "Building"),
            ("item", "收费项目", "Fee item"),
            ("billed_households", "计费户数", "Billed households"),
            ("households_in_arrears", "欠费户数", "Households in arrears"),
            (
                "household_collection_rate",
                "户收费率",
                "Household collection rate",
            ),
            ("receivable", "本期应收", "Receivable"),
            ("received", "本期实收", "Received"),
            ("collection_rate", "收费率", "Collection rate"),
            ("arrears_recovered", "清欠收回", "Arrears recovered"),
            ("arrears_outstanding", "往期仍欠", "Arrears outstanding"),
            ("clearance_rate", "清缴率", "Clearance rate"),
        ],
    );
    let mut chart_labels = Vec::new();
    let mut chart_values = Vec::new();
    for ((building, item), v) in &by_key {
        let key = (building.clone(), item.clone());
        let nb = count(billed.get(&key).map_or(0, BTreeSet::len));
        let na = count(owing.get(&key).map_or(0, BTreeSet::len));
        t.rows.push(vec![
            json!(building),
            json!(names.get(item).cloned().unwrap_or_else(|| item.clone())),
            json!(nb),
            json!(na),
            rate_cell(nb - na, nb),
            json!(show_fen(v.receivable)),
            json!(show_fen(v.received)),
            rate_cell(v.received, v.receivable),
            json!(show_fen(v.recovered)),
            json!(show_fen(v.still_owed)),
            rate_cell(v.recovered, v.recovered + v.still_owed),
        ]);
        chart_labels.push(format!("{building} {item}"));
        #[allow(clippy::cast_precision_loss, reason = "a bar's height, never a figure")]
        chart_values.push(rate_bp(v.received, v.receivable).unwrap_or(0) as f64 / 100.0);
    }
    r.tables.push(t);
    r.charts.push(Chart {
        title: "收费率 Collection rate (%)".into(),
        stacked: false,
        unit: "%",
        labels: chart_labels,
        series: vec![Series {
            name: "收费率".into(),
            values: chart_values,
        }],
    });

    // By month: each billed period of M's year up to M, as of the cut-off.
    let mut by_month: BTreeMap<Period, (i64, i64)> = BTreeMap::new();
    for b in bills
        .iter()
        .filter(|b| b.period <= month && months_between(b.period, month) < 12)
    {
        let e = by_month.entry(b.period).or_default();
        e.0 += b.amount - b.adjusted;
        e.1 += b.paid_before + b.paid_in;
    }
    let mut t = Table::new(
        ("按月（截止时）", "By month (at the cut-off)"),
        &[
            ("period", "月份", "Period"),
            ("receivable", "应收", "Receivable"),
            ("received", "实收", "Received"),
            ("outstanding", "未收", "Outstanding"),
            ("collection_rate", "收费率", "Collection rate"),
        ],
    );
    for (p, (due, got)) in &by_month {
        t.rows.push(vec![
            json!(p.to_string()),
            json!(show_fen(*due)),
            json!(show_fen(*got)),
            json!(show_fen(due - got)),
            rate_cell(*got, *due),
        ]);
    }
    r.tables.push(t);

    // Arrears aging, household by household.
    let mut aging: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for b in bills
        .iter()
        .filter(|b| b.outstanding() > 0 && b.period <= month)
    {
        let age = months_between(b.period, month);
        let slot = AGING
            .iter()
            .position(|(_, _, lo, hi)| (*lo..=*hi).contains(&age))
            .unwrap_or(AGING.len() - 1);
        let row = aging
            .entry((b.unit.as_str(), b.building.as_str()))
            .or_insert_with(|| vec![0; AGING.len()]);
        row[slot] += b.outstanding();
    }
    let mut cols: Vec<(&'static str, &'static str, &'static str)> = vec![
        ("unit", "单元", "Unit"),
        ("building", "楼栋", "Building"),
        ("total", "欠费合计", "Total owed"),
    ];
    cols.extend(AGING.iter().map(|(k, zh, _, _)| (*k, *zh, *k)));
    let mut t = Table::new(("欠费账龄", "Arrears aging"), &cols);
    for ((unit, building), amounts) in &aging {
        let mut row = vec![
            json!(unit),
            json!(building),
            json!(show_fen(amounts.iter().sum())),
        ];
        row.extend(amounts.iter().map(|a| json!(show_fen(*a))));
        t.rows.push(row);
    }
    r.tables.push(t);
    Ok(r)
}
