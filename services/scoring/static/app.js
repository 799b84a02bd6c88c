'use strict';
(function () {
  var TOKEN = decodeURIComponent((location.hash || '').replace(/^#/, ''));
  var API = '/judge/api/';
  var STATE_TEXT = { scored: '已评分', missing: '未评分', recused: '回避' };
  var ERROR_TEXT = {
    Unauthorized: '个人链接无效或已失效，请联系评选办公室获取新的链接。',
    PanelClosed: '本组评审已结束，个人链接已失效，不能再提交或修改评分。',
    Forbidden: '您不能为该候选对象评分（需回避，或不在本组）。',
    NotFound: '该候选对象已不在评选名单上。',
    InvalidState: '该候选对象已不在评选名单上。',
    Conflict: '评分刚刚在别处更新过，请刷新页面后重试。',
    ValidationError: '输入有误，请检查标红的项目。'
  };
  var sheet = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function say(text) { document.getElementById('status').textContent = text; }
  function fmt(n) { return (Math.round(n * 100) / 100).toString(); }
  function when(iso) {
    try { return new Date(iso).toLocaleString('zh-CN', { timeZone: sheet.timezone, hour12: false }); }
    catch (e) { return iso; }
  }

  function api(path, body) {
    var options = { method: body ? 'POST' : 'GET', cache: 'no-store', credentials: 'omit',
                    headers: { 'X-Judge-Link': TOKEN } };
    if (body) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { data.status = response.status; throw data; }
        return data;
      });
    });
  }
  function errorText(error) {
    return (error && ERROR_TEXT[error.error]) || '网络异常，请稍后重试。';
  }

  // --- large text -----------------------------------------------------------------------
  function setLarge(on) {
    document.documentElement.classList.toggle('large', on);
    document.getElementById('large-text').setAttribute('aria-pressed', on ? 'true' : 'false');
    try { localStorage.setItem('pingxuan-large-text', on ? '1' : '0'); } catch (e) {}
  }

  // --- rendering ------------------------------------------------------------------------
  function renderSummary() {
    var c = sheet.counts;
    document.getElementById('counts').textContent =
      '共 ' + c.candidates + ' 个候选对象：已评 ' + c.scored + ' 个，未评 ' + c.missing +
      ' 个，回避 ' + c.recused + ' 个。';
    document.getElementById('closes').textContent = sheet.closes_at ?
      '评审截止时间：' + sheet.closes_at.replace('T', ' ').slice(0, 16) + '（北京时间）' : '';
    var list = document.getElementById('missing');
    list.textContent = '';
    sheet.candidates.forEach(function (row) {
      if (row.state !== 'missing') { return; }
      var item = el('li');
      item.appendChild(el('a', { href: '#c-' + row.candidate_id }, row.nominee_name));
      list.appendChild(item);
    });
    document.getElementById('missing-box').hidden = c.missing === 0;
    document.getElementById('summary').hidden = false;
  }

  function stateText(row) {
    if (row.state === 'scored') {
      return '已保存：加权总分 ' + fmt(row.total) + ' 分（' + when(row.submitted_at) + '）';
    }
    if (row.state === 'recused') { return '回避：您所在单位与该候选对象有关，不参与评分'; }
    return '未评分';
  }

  function updateState(row) {
    var node = document.getElementById('state-' + row.candidate_id);
    if (node) { node.textContent = stateText(row); node.setAttribute('data-state', row.state); }
  }

  function totalOf(form) {
    var sum = 0, complete = true;
    sheet.criteria.forEach(function (c) {
      var value = form.elements[c.key].value.trim();
      var n = Number(value);
      if (value === '' || !isFinite(n)) { complete = false; } else { sum += c.weight * n; }
    });
    return complete ? sum : null;
  }

  function renderCandidate(row) {
    var id = row.candidate_id;
    var card = el('article', { 'class': 'candidate', id: 'c-' + id, 'aria-labelledby': 'name-' + id });
    card.appendChild(el('h2', { id: 'name-' + id }, row.nominee_name));
    card.appendChild(el('p', { 'class': 'meta' }, '所在单位：' + row.nominee_unit +
      (row.org_type_name ? '（' + row.org_type_name + '）' : '')));
    card.appendChild(el('p', { 'class': 'meta' }, '推荐单位：' + row.nominating_unit));
    var deeds = el('details');
    deeds.appendChild(el('summary', {}, '事迹简介'));
    deeds.appendChild(el('p', {}, row.deeds_summary));
    card.appendChild(deeds);
    card.appendChild(el('p', { 'class': 'state', id: 'state-' + id, 'data-state': row.state,
                               'aria-live': 'polite' }, stateText(row)));
    if (row.state === 'recused' || sheet.closed) { return card; }

    var form = el('form', { novalidate: 'novalidate', 'aria-label': '为' + row.nominee_name + '评分' });
    sheet.criteria.forEach(function (c) {
      var inputId = 's-' + id + '-' + c.key;
      var box = el('div', { 'class': 'field' });
      box.appendChild(el('label', { 'for': inputId }, c.name + '（权重 ' + fmt(c.weight * 100) +
        '%，' + fmt(c.min) + '–' + fmt(c.max) + ' 分）'));
      var input = el('input', { id: inputId, name: c.key, type: 'number', inputmode: 'decimal',
                                min: String(c.min), max: String(c.max), step: 'any',
                                required: 'required', 'aria-describedby': 'e-' + inputId });
      if (row.scores && row.scores[c.key] !== undefined) { input.value = String(row.scores[c.key]); }
      box.appendChild(input);
      box.appendChild(el('p', { 'class': 'error', id: 'e-' + inputId }));
      form.appendChild(box);
    });
    var commentId = 'comment-' + id;
    var comment = el('div', { 'class': 'comment field' });
    comment.appendChild(el('label', { 'for': commentId }, '评语（选填）'));
    var area = el('textarea', { id: commentId, name: 'comment', rows: '2', maxlength: '1000' });
    area.value = row.comment || '';
    comment.appendChild(area);
    form.appendChild(comment);
    var total = el('p', { 'class': 'total' }, '加权总分：');
    var out = el('output', { id: 'total-' + id }, row.total === null ? '—' : fmt(row.total));
    total.appendChild(out);
    form.appendChild(total);
    form.appendChild(el('button', { type: 'submit', id: 'save-' + id }, '保存评分'));
    form.appendChild(el('p', { 'class': 'form-message', id: 'msg-' + id, role: 'status' }));
    form.addEventListener('input', function () {
      var t = totalOf(form);
      out.textContent = t === null ? '—' : fmt(t);
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      save(row.candidate_id, form);
    });
    card.appendChild(form);
    return card;
  }

  function render() {
    document.getElementById('title').textContent = sheet.campaign_name;
    document.getElementById('who').textContent = sheet.category_name + ' · 评委：' +
      sheet.judge.name + '（' + sheet.judge.unit + '）';
    var box = document.getElementById('candidates');
    box.textContent = '';
    if (sheet.candidates.length === 0) {
      box.appendChild(el('p', {}, '本组暂无候选对象。'));
    }
    sheet.candidates.forEach(function (row) { box.appendChild(renderCandidate(row)); });
    renderSummary();
    say(sheet.closed ? ERROR_TEXT.PanelClosed : '请逐项打分，每个候选对象分别保存。');
  }

  // --- saving ---------------------------------------------------------------------------
  function showFieldError(form, key, text) {
    var input = form.elements[key];
    input.setAttribute('aria-invalid', text ? 'true' : 'false');
    document.getElementById('e-' + input.id).textContent = text || '';
  }

  function checkForm(form) {
    var scores = {}, firstBad = null;
    sheet.criteria.forEach(function (c) {
      var raw = form.elements[c.key].value.trim();
      var n = Number(raw), problem = '';
      if (raw === '') { problem = '请填写分数'; }
      else if (!isFinite(n)) { problem = '请输入数字'; }
      else if (n < c.min || n > c.max) { problem = '分数应在 ' + fmt(c.min) + '–' + fmt(c.max) + ' 之间'; }
      showFieldError(form, c.key, problem);
      if (problem && !firstBad) { firstBad = form.elements[c.key]; }
      scores[c.key] = n;
    });
    if (firstBad) { firstBad.focus(); return null; }
    return scores;
  }

  function save(candidateId, form) {
    var message = document.getElementById('msg-' + candidateId);
    message.className = 'form-message';
    var scores = checkForm(form);
    if (!scores) {
      message.textContent = ERROR_TEXT.ValidationError;
      message.className = 'form-message bad';
      return;
    }
    var button = form.querySelector('button[type=submit]');
    button.disabled = true;
    message.textContent = '正在保存…';
    var comment = form.elements.comment.value.trim();
    api('scores', { candidate_id: candidateId, scores: scores, comment: comment || null })
      .then(function (saved) {
        message.textContent = '已保存，加权总分 ' + fmt(saved.total) + ' 分。';
        message.className = 'form-message good';
        return api('worksheet').then(function (fresh) {
          sheet = fresh;
          sheet.candidates.forEach(updateState);
          renderSummary();
        });
      })
      .catch(function (error) {
        message.className = 'form-message bad';
        message.textContent = errorText(error);
        Object.keys((error && error.fields) || {}).forEach(function (field) {
          var key = field.replace(/^scores\./, '');
          if (form.elements[key]) { showFieldError(form, key, '请检查此项分数'); }
        });
        if (error && (error.error === 'PanelClosed' || error.error === 'Unauthorized')) {
          say(errorText(error));
        }
      })
      .then(function () { button.disabled = false; });
  }

  // --- start ----------------------------------------------------------------------------
  document.addEventListener('DOMContentLoaded', function () {
    var stored = null;
    try { stored = localStorage.getItem('pingxuan-large-text'); } catch (e) {}
    setLarge(stored === '1');
    document.getElementById('large-text').addEventListener('click', function () {
      setLarge(!document.documentElement.classList.contains('large'));
    });
    if (!TOKEN) { say('缺少个人链接，请使用评选办公室发给您的完整链接打开本页。'); return; }
    api('worksheet').then(function (data) { sheet = data; render(); })
      .catch(function (error) { say(errorText(error)); });
  });
})();
