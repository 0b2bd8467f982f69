// Every string a person reads in the field app, Chinese first, English as a
// choice: one table, nothing scattered. Rule names come from schema::judge,
// the relay's hard rules (validate.rs) and the device (client-core); each
// gets a sentence here, and the rule's own English reason is shown beneath.

export const STR = {
  zh: {
    app: '外勤', work: '我的工作', report: '现场上报', pending: '待同步', log: '同步日志',
    lang: 'English', offline: '离线：操作已保存在本机，联网后自动同步', online: '在线',
    sync: '同步', syncing: '同步中…', last_sync: '上次同步', never: '从未',
    sync_failed: '同步失败', enrol_title: '登记本机', enrol_help: '请扫描主管在“设备”页面显示的二维码，或输入登记码。',
    enrol_code: '登记码', enrol_go: '登记', enrolling: '正在登记…', enrol_failed: '登记失败',
    scan: '扫描二维码', you_are: '当前用户', no_work: '暂无工作', serial_none: '（待编号）',
    due: '期限', pending_n: '{n} 项待同步', damaged: '部分数据损坏，已尽量显示', status: '状态',
    official: '正式', shown: '本机显示', household: '住户档案', residents: '住户', access: '出入说明',
    equipment: '设备', timeline: '记录', notes: '备注', photos: '照片', actions: '可执行的操作',
    unavailable: '当前不可执行', add_note: '添加备注', save: '保存', cancel: '取消', saved: '已保存（待同步）',
    refused: '不能执行', reason: '原因', result: '处理结果', labour_min: '工时（分钟）', materials: '材料',
    material_name: '名称', qty: '数量', unit_price: '单价（元）', add_material: '添加材料', photo: '拍照',
    signature: '住户签名', clear: '清除', resident_absent: '住户不在场', witness: '见证人', quote: '报价（元）',
    verdict_pending: '待裁定', location: '位置', title: '标题', description: '描述', category: '类别',
    urgency: '紧急程度', kind: '类型', submit: '提交', quarantine: '隔离区', quarantine_help: '中继拒收的本机更改，保留备查，可导出给主管。',
    export: '导出', nothing: '无', started: '开始', ended: '结束', ok: '成功', failed: '失败',
    up: '上传', down: '下载', verdicts: '裁定', photos_up: '照片上传', problems: '问题',
    back: '返回', open_ticket: '打开', reported: '已上报', local_photo: '本机照片', relay_photo: '照片（在中继）',
    not_uploaded: '未上传', uploaded: '已上传', by: '由', at: '于', device_log: '本机同步日志',
    note_placeholder: '写点什么…', unreadable: '无法读取的记录',
  },
  en: {
    app: 'Field', work: 'My work', report: 'Report a find', pending: 'Pending', log: 'Sync log',
    lang: '中文', offline: 'Offline: actions are saved on this phone and sync when online', online: 'Online',
    sync: 'Sync', syncing: 'Syncing…', last_sync: 'Last sync', never: 'never',
    sync_failed: 'Sync failed', enrol_title: 'Enrol this phone', enrol_help: 'Scan the QR code your supervisor shows on the Devices page, or type the enrolment code.',
    enrol_code: 'Enrolment code', enrol_go: 'Enrol', enrolling: 'Enrolling…', enrol_failed: 'Enrolment failed',
    scan: 'Scan QR code', you_are: 'Signed in as', no_work: 'No work', serial_none: '(number pending)',
    due: 'Due', pending_n: '{n} pending', damaged: 'Some data is damaged; showing what could be read', status: 'Status',
    official: 'Official', shown: 'On this phone', household: 'Household file', residents: 'Residents', access: 'Access notes',
    equipment: 'Equipment', timeline: 'Timeline', notes: 'Notes', photos: 'Photos', actions: 'What you can do',
    unavailable: 'Not possible now', add_note: 'Add a note', save: 'Save', cancel: 'Cancel', saved: 'Saved (pending sync)',
    refused: 'Refused', reason: 'Reason', result: 'Result', labour_min: 'Labour (minutes)', materials: 'Materials',
    material_name: 'Name', qty: 'Qty', unit_price: 'Unit price (yuan)', add_material: 'Add material', photo: 'Take photo',
    signature: "Resident's signature", clear: 'Clear', resident_absent: 'Resident absent', witness: 'Witness', quote: 'Quote (yuan)',
    verdict_pending: 'awaiting verdict', location: 'Location', title: 'Title', description: 'Description', category: 'Category',
    urgency: 'Urgency', kind: 'Kind', submit: 'Submit', quarantine: 'Quarantine', quarantine_help: 'Changes of this phone the relay refused, kept for review; export them for your supervisor.',
    export: 'Export', nothing: 'None', started: 'Started', ended: 'Ended', ok: 'ok', failed: 'failed',
    up: 'up', down: 'down', verdicts: 'verdicts', photos_up: 'photos uploaded', problems: 'problems',
    back: 'Back', open_ticket: 'Open', reported: 'Reported', local_photo: 'photo on this phone', relay_photo: 'photo (on the relay)',
    not_uploaded: 'not uploaded', uploaded: 'uploaded', by: 'by', at: 'at', device_log: "This phone's sync log",
    note_placeholder: 'Write something…', unreadable: 'Unreadable records',
  },
};

export const ACTIONS = {
  zh: { accept: '接单', start: '到场开工', hold: '暂停', resume: '恢复', hand_back: '退单', complete: '完工',
    cannot_fix: '无法修复', grab: '抢单', reply: '反馈', issue: '开单', record: '登记', note: '备注', assign: '派工',
    transfer: '转单', return: '回单', close: '结案', void: '作废', cancel: '撤单', escalate: '升级', override: '复核通过', dismiss: '复核驳回' },
  en: { accept: 'Accept', start: 'Arrive / start', hold: 'Hold', resume: 'Resume', hand_back: 'Hand back', complete: 'Complete',
    cannot_fix: 'Cannot fix', grab: 'Grab', reply: 'Reply', issue: 'Issue', record: 'Record', note: 'Note', assign: 'Assign',
    transfer: 'Transfer', return: 'Return', close: 'Close', void: 'Void', cancel: 'Cancel', escalate: 'Escalate', override: 'Override', dismiss: 'Dismiss' },
};

export const STATUS = {
  zh: { NEW: '新建', ISSUED: '已开单', ASSIGNED: '已派工', ACCEPTED: '已接单', IN_PROGRESS: '处理中', ON_HOLD: '暂停',
    COMPLETED: '已完工', UNABLE: '无法修复', OUTSOURCED: '已外包', RETURNED: '已回单', CHARGE_PENDING: '待收费', PAID: '已收费',
    WAIVED: '已减免', RETURN_VISITED: '已回访', CLOSED: '已结案', VOIDED: '已作废', CANCELLED: '已撤单', RECORDED: '已登记',
    ACKNOWLEDGED: '已确认', ROUTED: '已转办', IN_HAND: '处理中', RESPONDED: '已反馈', FOLLOWED_UP: '已回访', WITHDRAWN: '已撤回',
    MERGED: '已合并', WITH_ORDER: '已开维修单' },
  en: {},
};

export const FLAGS = {
  zh: { OVERDUE: '超时', FOCUS: '重点跟进', RETURN_VISIT_DUE: '待回访', ESCALATED: '会议督办' },
  en: { OVERDUE: 'OVERDUE', FOCUS: 'FOCUS', RETURN_VISIT_DUE: 'RETURN VISIT DUE', ESCALATED: 'ESCALATED' },
};

export const KINDS = {
  zh: { repair: '报修', complaint: '投诉', praise: '表扬', suggestion: '建议', need: '需求', paid_service: '有偿服务' },
  en: { repair: 'Repair', complaint: 'Complaint', praise: 'Praise', suggestion: 'Suggestion', need: 'Need', paid_service: 'Paid service' },
};

export const OUTCOMES = {
  zh: { accepted: '通过', conflict: '冲突（待复核）', rejected: '驳回（待复核）' },
  en: { accepted: 'accepted', conflict: 'conflict (for review)', rejected: 'rejected (for review)' },
};

export const URGENCY = {
  zh: { urgent: '紧急', normal: '一般', low: '不急' },
  en: { urgent: 'Urgent', normal: 'Normal', low: 'Low' },
};

// Why an action is refused, per rule name.
export const RULES = {
  zh: {
    allowed: '允许。',
    unknown_action: '本版本不认识这个操作。',
    author_mismatch: '记录上的操作人不是您本人。',
    not_for_kind: '这类工单没有这个步骤。',
    role_not_allowed: '您的岗位不能执行此操作。',
    terminal_state: '工单已结束（结案、作废、撤单等），只能添加备注。',
    wrong_state: '工单当前状态下不能执行此操作，请先完成前面的步骤。',
    missing_data: '缺少必填内容。',
    invalid_data: '填写的内容不符合要求。',
    not_assignee: '此工单没有派给您，只有负责的工程师可以操作。',
    grab_for_someone_else: '只能为自己抢单。',
    same_assignee: '新的负责人与原负责人相同。',
    wrong_department: '此事项没有转办到您的部门。',
    same_department: '新部门与原部门相同。',
    engineer_cannot_visit: '做过维修的工程师不能做回访。',
    paid_only: '只适用于有偿工单。',
    free_only: '只适用于免费工单。',
    quote_required: '有偿工单完工时必须填写报价。',
    amount_mismatch: '收费金额与应收金额不符。',
    waive_limit: '减免金额超出您的权限。',
    void_after_dispatch: '已派工的工单须由主管作废。',
    cancel_with_work: '已记录工时或材料，须由主管撤单。',
    not_dissatisfied: '只有回访不满意时才能返修或重开。',
    focus_needs_supervisor: '重点跟进的投诉须由主管结案。',
    satisfaction_required: '联系到住户时必须记录满意度。',
    no_open_review_item: '没有待复核的事项。',
    not_overridable: '此类操作不能复核通过。',
    already_escalated: '已经升级过。',
    no_open_escalation: '没有进行中的督办。',
    read_only: '此工单已转给他人，您只能查看。',
    access_ended: '此工单已不在您的工作中，这些更改未能送达中继。',
    malformed_change: '更改格式损坏，中继拒收。',
    oversized_change: '更改过大，中继拒收。',
    actor_not_bound: '更改来自另一台设备的身份，中继拒收。',
    forged_author: '更改冒用了他人的身份，中继拒收。',
    server_field: '更改试图改写中继专属内容，中继拒收。',
    append_only: '更改试图删除或改写已有记录，中继拒收。',
    field_not_writable: '您的岗位不能修改这个字段，中继拒收。',
    bad_shape: '更改内容不符合工单格式，中继拒收。',
  },
  en: {
    allowed: 'Allowed.',
    unknown_action: 'This version does not know the action.',
    author_mismatch: 'The action names someone other than you.',
    not_for_kind: 'This kind of ticket has no such step.',
    role_not_allowed: 'Your role may not do this.',
    terminal_state: 'The ticket has ended (closed, voided, cancelled…); only notes can be added.',
    wrong_state: 'Not possible in the ticket\'s current state; do the earlier steps first.',
    missing_data: 'Something required is missing.',
    invalid_data: 'Something entered is not valid.',
    not_assignee: 'This ticket is not assigned to you; only its engineer may do this.',
    grab_for_someone_else: 'You can only grab an order for yourself.',
    same_assignee: 'The new assignee is the current one.',
    wrong_department: 'This matter is not routed to your department.',
    same_department: 'The new department is the current one.',
    engineer_cannot_visit: 'The engineer who did the work may not do the return visit.',
    paid_only: 'Only for paid orders.',
    free_only: 'Only for free orders.',
    quote_required: 'A paid order needs its quote on completion.',
    amount_mismatch: 'The amount is not what is outstanding.',
    waive_limit: 'The waiver is above your limit.',
    void_after_dispatch: 'After dispatch only a supervisor may void.',
    cancel_with_work: 'Labour or materials are recorded; a supervisor must cancel.',
    not_dissatisfied: 'Only after a dissatisfied return visit.',
    focus_needs_supervisor: 'A FOCUS complaint is closed by a supervisor.',
    satisfaction_required: 'Record satisfaction when the resident was reached.',
    no_open_review_item: 'Nothing is waiting for review.',
    not_overridable: 'This kind of step cannot be overridden.',
    already_escalated: 'Already escalated.',
    no_open_escalation: 'No escalation is open.',
    read_only: 'The ticket was transferred away; you can only read it.',
    access_ended: 'The ticket left your work before these changes reached the relay.',
    malformed_change: 'The change is malformed; the relay refused it.',
    oversized_change: 'The change is too large; the relay refused it.',
    actor_not_bound: "The change carries another device's identity; the relay refused it.",
    forged_author: "The change claims someone else's name; the relay refused it.",
    server_field: "The change writes the relay's own fields; the relay refused it.",
    append_only: 'The change deletes or rewrites history; the relay refused it.',
    field_not_writable: 'Your role may not change this field; the relay refused it.',
    bad_shape: 'The change does not have a ticket\'s shape; the relay refused it.',
  },
};

export function lang() {
  return localStorage.getItem('propsync.lang') === 'en' ? 'en' : 'zh';
}

export function setLang(l) {
  localStorage.setItem('propsync.lang', l);
  document.documentElement.lang = l === 'en' ? 'en' : 'zh-CN';
}

export function t(key, params = {}) {
  const s = STR[lang()][key] ?? STR.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

const pick = (table, key) => table[lang()][key] ?? table.zh[key] ?? key;
export const actionName = (a) => pick(ACTIONS, a);
export const statusName = (s) => (lang() === 'en' ? s : STATUS.zh[s] ?? s);
export const flagName = (f) => pick(FLAGS, f);
export const kindName = (k) => pick(KINDS, k);
export const outcomeName = (o) => pick(OUTCOMES, o);
export const urgencyName = (u) => pick(URGENCY, u);
export const ruleText = (r) => RULES[lang()][r] ?? RULES.zh[r] ?? r;
