// The fee ledger (物业费) for the cashier and the manager: charge items, the
// monthly bill run, a household's statement, payments with their receipt
// and allocation, arrears reminders (催缴), and the manager's refunds and
// adjustments. Amounts are typed in yuan and sent as integer fen.

import { api, h, clear, fmtTime, fen, flash, field, select, table, errorBox, showError, backLink, localInput } from './util.js';
import { both, role, hundredths } from './property.js';

const KINDS = [['per_area', '按面积/月 per m² per month'], ['per_space', '按车位/月 per space per month'], ['metered', '代收（抄表）metered'], ['one_off', '一次性 one-off']];
const METHODS = [['cash', '现金 cash'], ['wechat', '微信 WeChat Pay'], ['alipay', '支付宝 Alipay'], ['bank_transfer', '银行转账 bank transfer'], ['card', '刷卡 card']];
const CHANNELS = [['phone', '电话 phone'], ['sms', '短信 SMS'], ['wechat', '微信 WeChat'], ['notice', '书面通知 written notice'], ['visit', '上门 visit']];
const name = (list, v) => (list.find(([k]) => k === v) || [v, v])[1];

/** A request id per form submission: a retried request records once. */
function requestId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Fen from a yuan amount typed by a person ("120.5" → 12050), exactly; throws for anything else. */
function yuan(input) {
  const f = hundredths(input.value);
  if (f === null || f <= 0) {
    input.focus();
    throw new Error(`${JSON.stringify(input.value)} 不是金额 is not an amount in yuan (at most two decimals)`);
  }
  return f;
}

/** This month in the property's time zone: YYYY-MM. */
function thisMonth() {
  return localInput(new Date()).slice(0, 7);
}

// ------------------------------------------------------------ the cashier's desk

export async function desk(main) {
  const manager = role() === 'manager';
  const items = h('div');
  const loadItems = async () => {
    const r = await api('/api/v1/fees/items');
    clear(items, table(['代码 Code', '名称 Name', '计费方式 Kind', '单价 Rate'], r.items.map((i) =>
      h('tr', h('td', i.code), h('td', i.name_zh, ' ', h('span.en', i.name_en)), h('td', name(KINDS, i.kind)), h('td.num', i.rate_fen ? fen(i.rate_fen) : '—'))),
    { empty: '还没有收费项目 No charge items yet.' }));
  };

  // A charge item (the manager sets them).
  let itemForm = null;
  if (manager) {
    const err = errorBox();
    const code = h('input', { name: 'code', required: true, placeholder: 'property_fee', pattern: '[A-Za-z0-9_]+' });
    const zh = h('input', { name: 'name_zh', required: true, placeholder: '物业费' });
    const en = h('input', { name: 'name_en', placeholder: 'Property fee' });
    const kind = select('kind', KINDS, { value: 'per_area' });
    const rate = h('input', { name: 'rate', inputmode: 'decimal', placeholder: '2.50' });
    itemForm = h('form.inline', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          try {
            const monthly = ['per_area', 'per_space'].includes(kind.value);
            const rate_fen = monthly || rate.value.trim() ? yuan(rate) : 0;
            await api('/api/v1/fees/items', { method: 'POST', body: { code: code.value.trim(), name_zh: zh.value.trim(), name_en: en.value.trim(), kind: kind.value, rate_fen } });
            flash(`收费项目已保存 Charge item ${code.value.trim()} saved.`, 'ok');
            await loadItems();
          } catch (e) { showError(err, e); }
        },
      },
    }, field('代码 Code', code), field('中文名称 Chinese name', zh), field('英文名称 English name', en), field('计费方式 Kind', kind),
    field('单价（元）Rate (yuan)', rate), h('button', { type: 'submit' }, '保存项目 Save the item'), err);
  }

  // The bill run.
  const runErr = errorBox();
  const month = h('input', { type: 'month', name: 'period', required: true, value: thisMonth() });
  const runOut = h('div#bill-run-result', { 'aria-live': 'polite' });
  const runBtn = h('button.primary', { type: 'submit' }, '出账 Run the bills');
  const runForm = h('form.inline', {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        showError(runErr, null);
        runBtn.disabled = true;
        try {
          const { run } = await api('/api/v1/fees/bill-runs', { method: 'POST', body: { period: month.value } });
          clear(runOut, h('p.bill-run', { 'data-testid': 'bill-run', dataset: { billed: run.billed, already: run.already } },
            h('strong', `${run.period}：生成账单 ${run.billed} 张`), `，已出过 ${run.already} 张`,
            run.numbers ? `（${run.numbers[0]} – ${run.numbers[1]}）` : '',
            run.credit_applied ? `，抵扣预存 ${fen(run.credit_applied)}` : '',
            h('br'), h('span.en', `${run.billed} bills made, ${run.already} already billed${run.billed === 0 ? ' (a repeated run bills nothing twice)' : ''}`)));
        } catch (e) { showError(runErr, e); } finally { runBtn.disabled = false; }
      },
    },
  }, field('账期 Month', month), runBtn);

  // Finding a household.
  const q = h('input', { type: 'search', name: 'q', placeholder: '单元、姓名、电话 unit, name or phone' });
  const found = h('div');
  let seq = 0;
  const find = async () => {
    const mine = ++seq;
    const r = await api('/api/v1/household-files', { query: { q: q.value.trim() } });
    if (mine !== seq) return;
    clear(found, table(['单元 Unit', '楼栋 Building', '住户 Residents', ''], r.households.slice(0, 50).map((x) =>
      h('tr', h('td', h('a', { href: '#/fees/household/' + x.id }, x.unit)), h('td', x.building), h('td', x.residents.map((p) => p.name).join('、')),
        h('td', h('a', { href: '#/fees/household/' + x.id }, role() === 'cashier' ? '收款 Collect' : '明细 Statement')))),
    { empty: '没有符合的住户。 No household matches.' }));
  };
  q.addEventListener('input', find);

  clear(main, backLink('#/register', 'Register'),
    h('h1', both('收费', 'Fees')),
    h('section.card', h('h2', both('收费项目', 'Charge items')), items, itemForm || h('p.muted.small', '收费项目由物业经理设置。 The manager sets the charge items.')),
    h('section.card', h('h2', both('月度出账', 'Monthly bill run')),
      h('p.muted.small', '同一账期重复出账不会重复计费；迁入迁出按天折算。 Running a month again bills nothing twice; move-in and move-out are prorated by day.'),
      runErr, runForm, runOut),
    h('section.card', h('h2', both('住户收费', 'A household')), h('form.filters', { on: { submit: (ev) => { ev.preventDefault(); find(); } } }, field('查找 Find', q)), found));
  await loadItems();
  await find();
}

// ------------------------------------------------------------ one household

export async function household(main, id) {
  const [st, file] = await Promise.all([
    api('/api/v1/fees/households/' + encodeURIComponent(id)),
    api('/api/v1/household-files/' + encodeURIComponent(id)),
  ]);
  const f = file.household;
  if (!st.bills) {
    // The front desk sees only whether the household owes.
    clear(main, backLink('#/file/' + id, '一户一档 Household file'), h('h1', both('物业费', 'Fees'), ' ', f.unit),
      h('p', st.in_arrears ? '欠费 In arrears' : '无欠费 Not in arrears'));
    return;
  }
  const reload = () => household(main, id);
  const receipt = h('div#receipt', { 'aria-live': 'polite' });
  const forms = [];

  if (role() === 'cashier') {
    const err = errorBox();
    const amount = h('input', { name: 'amount', inputmode: 'decimal', required: true, placeholder: '0.00', value: st.arrears_fen > 0 ? fen(st.arrears_fen).replace('¥', '') : '' });
    const method = select('method', METHODS, { value: 'cash' });
    const shown = h('span.amount-shown.muted');
    const show = () => { const v = hundredths(amount.value); clear(shown, v ? `= ${fen(v)}（${v} 分 fen）` : ''); };
    amount.addEventListener('input', show);
    show();
    let rid = requestId();
    const pay = h('button.primary', { type: 'submit' }, '收款 Record the payment');
    forms.push(h('form.card', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          pay.disabled = true;
          try {
            const amount_fen = yuan(amount);
            const { receipt: r } = await api('/api/v1/fees/payments', { method: 'POST', body: { household: id, amount_fen, method: method.value, request_id: rid } });
            rid = requestId();
            await reload();
            clear(document.getElementById('receipt'), h('section.card.created', { 'data-testid': 'receipt' },
              h('h2', both('收据', 'Receipt'), ' ', h('span.big-serial', { 'data-testid': 'receipt-number' }, r.receipt)),
              h('p', `${fen(r.amount_fen)} · ${name(METHODS, r.method)}`, r.repeated ? ' (已记录 already recorded)' : ''),
              table(['账单 Bill', '冲抵 Allocated'], r.allocations.map(([b, a]) => h('tr', h('td', b), h('td.num', fen(a)))), { empty: '全部作为预存 All held as credit.' }),
              h('p', `预存余额 Credit held: ${fen(r.credit_fen)}`)));
          } catch (e) { showError(err, e); } finally { pay.disabled = false; }
        },
      },
    }, h('h2', both('收款', 'Take a payment')), err,
    h('div.inline', field('金额（元）Amount (yuan)', amount), field('方式 Method', method), pay), shown,
    h('p.muted.small', '默认冲抵最早的未付账单，多余部分作为预存。 Allocated to the oldest open bills; what is left is held as credit.')));
  }

  if (['cashier', 'front_desk', 'supervisor', 'manager'].includes(role())) {
    const err = errorBox();
    const channel = select('channel', CHANNELS, { value: 'phone' });
    const result = h('input', { name: 'result', required: true, maxlength: 500, placeholder: '答应月底前缴清 promised to pay by month end' });
    forms.push(h('form.card', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          try {
            await api('/api/v1/fees/reminders', { method: 'POST', body: { household: id, channel: channel.value, result: result.value.trim() } });
            flash('催缴已记录 Reminder recorded.', 'ok');
            await reload();
          } catch (e) { showError(err, e); }
        },
      },
    }, h('h2', both('催缴记录', 'Record an arrears reminder')), err,
    h('div.inline', field('渠道 Channel', channel), field('结果 Result', result), h('button', { type: 'submit' }, '记录 Record'))));
  }

  if (role() === 'manager') {
    const err = errorBox();
    const kind = select('kind', [['adjustment', '调整（减免账单）adjustment of a bill'], ['refund', '退款（退预存）refund of credit']], { value: 'adjustment' });
    const open = st.bills.filter((b) => b.outstanding_fen > 0);
    const bill = select('bill', open.map((b) => [b.number, `${b.number} ${b.item} ${b.period} ${fen(b.outstanding_fen)}`]), { blank: '—' });
    const amount = h('input', { name: 'adj_amount', inputmode: 'decimal', required: true, placeholder: '0.00' });
    const reason = h('input', { name: 'reason', required: true, maxlength: 500 });
    forms.push(h('form.card', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          showError(err, null);
          try {
            const r = await api('/api/v1/fees/adjustments', {
              method: 'POST',
              body: { household: id, kind: kind.value, bill: kind.value === 'adjustment' ? bill.value || null : null, amount_fen: yuan(amount), reason: reason.value.trim() },
            });
            flash(`已批准 ${r.number} Approved ${r.number}.`, 'ok');
            await reload();
          } catch (e) { showError(err, e); }
        },
      },
    }, h('h2', both('退款和调整（经理批准）', 'Refund or adjustment (manager approval)')),
    h('p.muted.small', '冲正记录，从不修改原记录。 A reversing entry; nothing is ever edited.'), err,
    h('div.inline', field('类型 Kind', kind), field('账单 Bill', bill), field('金额（元）Amount (yuan)', amount), field('原因 Reason', reason),
      h('button', { type: 'submit' }, '批准 Approve'))));
  }

  clear(main, backLink('#/fees', '收费 Fees'),
    h('div.page-head', h('h1', both('费用明细', 'Fee statement'), ' ', f.unit, h('small.muted', ' ' + f.residents.map((p) => p.name).join('、'))),
      h('p', h('a', { href: '#/file/' + id }, '一户一档 Household file'))),
    h('dl.stats',
      h('div.stat', h('dt', '欠费 Arrears'), h('dd', { 'data-testid': 'arrears' }, fen(st.arrears_fen))),
      h('div.stat', h('dt', '预存 Credit'), h('dd', { 'data-testid': 'credit' }, fen(st.credit_fen)))),
    receipt,
    forms,
    h('section.card', h('h2', both('账单', 'Bills')),
      table(['账单号 Bill', '项目 Item', '月份 Period', '金额 Amount', '未付 Outstanding', '备注 Note'], st.bills.map((b) =>
        h('tr', { dataset: { bill: b.number } }, h('td', b.number), h('td', b.item), h('td', b.period), h('td.num', fen(b.amount_fen)), h('td.num', fen(b.outstanding_fen)), h('td', b.note))),
      { empty: '没有账单 No bills.' })),
    h('section.card', h('h2', both('收款', 'Payments')),
      table(['收据号 Receipt', '金额 Amount', '方式 Method', '收银员 Cashier', '时间 At'], st.payments.map((p) =>
        h('tr', h('td', p.receipt), h('td.num', fen(p.amount_fen)), h('td', name(METHODS, p.method)), h('td', p.cashier), h('td', fmtTime(p.at)))),
      { empty: '没有收款 No payments.' })),
    h('section.card', h('h2', both('退款和调整', 'Refunds and adjustments')),
      table(['编号 Number', '类型 Kind', '账单 Bill', '金额 Amount', '原因 Reason', '批准人 Approver', '时间 At'], st.adjustments.map((a) =>
        h('tr', h('td', a.number), h('td', a.kind), h('td', a.bill || ''), h('td.num', fen(a.amount_fen)), h('td', a.reason), h('td', a.approved_by), h('td', fmtTime(a.at)))),
      { empty: '无 None.' })),
    h('section.card', h('h2', both('催缴记录', 'Arrears reminders')),
      table(['渠道 Channel', '结果 Result', '记录人 By', '时间 At'], st.reminders.map((r) =>
        h('tr', h('td', name(CHANNELS, r.channel)), h('td', r.result), h('td', r.by), h('td', fmtTime(r.at)))),
      { empty: '无 None.' })));
}
