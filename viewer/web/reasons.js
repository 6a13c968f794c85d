// The reasons in an incident's timeline, in the operator's language. The
// engine writes them in English ("nearest free unit of east-village,
// 198 m"); the known forms are matched here and said again with their
// values (areas by name, units by name, distances and times formatted),
// anything else is shown as it was written. Skywatch.ops.reasonText.
'use strict';

(function () {
  const S = window.Skywatch;
  const O = S.ops;

  S.addStrings({
    'zh-CN': {
      'reason.manual': '该辖区为人工派单',
      'reason.new_round': '所有空闲单位均已拒单，重新逐一派单',
      'reason.no_unit_root': '各级辖区均无空闲单位',
      'reason.no_unit_wait': '各级辖区均无空闲单位，等待单位空闲',
      'reason.no_unit': '没有空闲单位',
      'reason.declined_by': '{unit} 拒单',
      'reason.offer_timed_out': '{unit} 未在时限内应答',
      'reason.no_answer': '{unit} 未在 {time} 前应答',
      'reason.nearest_of': '{area}最近的空闲单位，{dist}',
      'reason.nearest': '最近的空闲单位，{dist}',
      'reason.none_free_in': '（{area}无空闲单位）',
      'reason.assigned_by': '{actor} 指派，{dist}',
      'reason.moving': '单位已出发（据位置上报）',
      'reason.withdrawn': '已被操作员撤回',
      'reason.offered_other': '已改派其他单位',
      'reason.deadline': '未在时限内应答',
      'reason.resolved_by_operator': '操作员已处置：{disp}',
      'reason.maintenance': '维护：{text}',
      'reason.from': '{event}，来自 {device}',
      'reason.zone_fired': '防区 {zone} 触发',
      'reason.class_joined': '并入{class}',
      'reason.sep': '，',
      'reason.with_note': '{text}：{note}',
      'reason.ev.restore': '{class}恢复',
      'reason.ev.zone': '防区 {zone}',
      'reason.ev.code': '代码 {code}',
      'reason.ev.battery': '（电量低）',
      'reason.ev.sep': ' · ',
    },
    en: {
      'reason.manual': 'this area dispatches by hand',
      'reason.new_round': 'every free unit had declined: asking them again',
      'reason.no_unit_root': 'no free unit in any area up to the top',
      'reason.no_unit_wait': 'no free unit in any area up to the top; waiting for one',
      'reason.no_unit': 'no free unit',
      'reason.declined_by': 'declined by {unit}',
      'reason.offer_timed_out': 'the offer to {unit} timed out',
      'reason.no_answer': 'no answer from {unit} by {time}',
      'reason.nearest_of': 'nearest free unit of {area}, {dist}',
      'reason.nearest': 'nearest free unit, {dist}',
      'reason.none_free_in': ' (none free in {area})',
      'reason.assigned_by': 'assigned by {actor}, {dist}',
      'reason.moving': 'moving (position report)',
      'reason.withdrawn': 'withdrawn by an operator',
      'reason.offered_other': 'offered to another unit',
      'reason.deadline': 'no answer by the deadline',
      'reason.resolved_by_operator': 'resolved by an operator: {disp}',
      'reason.maintenance': 'maintenance: {text}',
      'reason.from': '{event} from {device}',
      'reason.zone_fired': 'zone {zone} fired',
      'reason.class_joined': '{class} joined',
      'reason.sep': ', ',
      'reason.with_note': '{text}: {note}',
      'reason.ev.restore': '{class} restore',
      'reason.ev.zone': 'zone {zone}',
      'reason.ev.code': 'code {code}',
      'reason.ev.battery': ' (battery low)',
      'reason.ev.sep': ' · ',
    },
  });

  const DISPOSITIONS = ['genuine', 'false_equipment', 'false_user', 'unfounded', 'duplicate'];

  function dist(m) { return O.fmtDistance(Number(m)); }
  function area(id) { return O.areaName(id); }
  function unit(id) { return O.unitName(id); }

  // The engine's sentences that carry no event: [pattern, key, values].
  const SENTENCES = [
    [/^the area's dispatch policy is manual$/, 'reason.manual'],
    [/^every free unit had declined: asking them again$/, 'reason.new_round'],
    [/^no free unit up to the root; waiting for one$/, 'reason.no_unit_wait'],
    [/^no free unit up to the root$/, 'reason.no_unit_root'],
    [/^no free unit$/, 'reason.no_unit'],
    [/^declined by (\S+)$/, 'reason.declined_by', (m) => ({ unit: unit(m[1]) })],
    [/^offer to (\S+) timed out$/, 'reason.offer_timed_out', (m) => ({ unit: unit(m[1]) })],
    [/^no answer from (\S+) by (\S+)$/, 'reason.no_answer', (m) => ({ unit: unit(m[1]), time: S.fmtTime(m[2]) || m[2] })],
    [/^nearest free unit of (\S+), (\d+) m(?: \(none free in (\S+)\))?$/, 'reason.nearest_of',
      (m) => ({ area: area(m[1]), dist: dist(m[2]) }), (m) => (m[3] ? S.t('reason.none_free_in', { area: area(m[3]) }) : '')],
    [/^nearest free unit, (\d+) m$/, 'reason.nearest', (m) => ({ dist: dist(m[1]) })],
    [/^assigned by (\S+), (\d+) m$/, 'reason.assigned_by', (m) => ({ actor: m[1], dist: dist(m[2]) })],
    [/^moving \(position report\)$/, 'reason.moving'],
    // What units are told; kept here should it reach a timeline.
    [/^withdrawn by an operator$/, 'reason.withdrawn'],
    [/^offered to another unit$/, 'reason.offered_other'],
    [/^no answer by the deadline$/, 'reason.deadline'],
    [/^resolved by an operator: (\w+)$/, 'reason.resolved_by_operator', (m) => ({ disp: O.label('disp', m[1]) })],
  ];

  function sentence(text) {
    for (const [re, key, vars, tail] of SENTENCES) {
      const m = re.exec(text);
      if (m) return S.t(key, vars ? vars(m) : null) + (tail ? tail(m) : '');
    }
    return null;
  }

  // An event as the engine describes it: "<class>[ restore][ zone Z]
  // [ code C][: text][ (battery low)]".
  const EVENT = /^([a-z_]+)( restore)?(?: zone (\S+))?(?: code (\S+))?(?:: ([\s\S]*?))?( \(battery low\))?$/;

  function eventText(text) {
    const m = EVENT.exec(text);
    if (!m) return null;
    const cls = O.label('class', m[1]);
    const parts = [m[2] ? S.t('reason.ev.restore', { class: cls }) : cls];
    if (m[3]) parts.push(S.t('reason.ev.zone', { zone: m[3] }));
    if (m[4]) parts.push(S.t('reason.ev.code', { code: m[4] }));
    let out = parts.join(S.t('reason.ev.sep'));
    if (m[5]) out = S.t('reason.with_note', { text: out, note: m[5] });
    if (m[6]) out += S.t('reason.ev.battery');
    return out;
  }

  // opened: "[maintenance: ]<event> from <device>".
  function openedText(text, inc) {
    const m = /^(maintenance: )?([\s\S]*) from (\S+)$/.exec(text);
    if (!m) return null;
    const ev = eventText(m[2]);
    if (ev === null) return null;
    const device = inc && inc.device === m[3] && inc.device_name ? inc.device_name : m[3];
    const out = S.t('reason.from', { event: ev, device });
    return m[1] ? S.t('reason.maintenance', { text: out }) : out;
  }

  // joined: what the event added ("zone 2 fired, fire joined"), or the
  // event itself.
  function joinedText(text) {
    const news = text.split(', ').map((part) => {
      let m = /^zone (\S+) fired$/.exec(part);
      if (m) return S.t('reason.zone_fired', { zone: m[1] });
      m = /^([a-z_]+) joined$/.exec(part);
      if (m) return S.t('reason.class_joined', { class: O.label('class', m[1]) });
      return null;
    });
    if (!news.includes(null)) return news.join(S.t('reason.sep'));
    return eventText(text);
  }

  // A resolution: "<disposition>[: note]".
  function dispositionText(text) {
    const m = /^([a-z_]+)(?:: ([\s\S]*))?$/.exec(text);
    if (!m || !DISPOSITIONS.includes(m[1])) return null;
    const disp = O.label('disp', m[1]);
    return m[2] ? S.t('reason.with_note', { text: disp, note: m[2] }) : disp;
  }

  const BY_ACTION = {
    opened: openedText,
    joined: joinedText,
    event: eventText,
    restore: eventText,
    resolve: dispositionText,
    cleared: dispositionText,
    false_alarm: dispositionText,
  };

  // reasonText is entry.reason in the operator's language: a known form
  // translated, else the text as written (an operator's or a unit's own
  // words, or a form this page does not know yet).
  function reasonText(entry, inc) {
    const text = entry && entry.reason ? String(entry.reason) : '';
    if (!text) return '';
    const byAction = BY_ACTION[entry.action];
    const out = (byAction && byAction(text, inc)) ?? sentence(text);
    return out === null || out === undefined ? text : out;
  }

  O.reasonText = reasonText;
}());
