// The Raft Explorer page. It speaks stateright's Explorer API:
//   GET  /.status              checker progress and the properties with their discoveries
//   GET  /.states/0/4/2        the steps possible after following action indices 0, 4, 2
//   POST /.runtocompletion     let the on-demand checker explore everything
// A state is named by its path of action indices, in the location: #/steps/0/4/2 (the same
// links stateright's own page and `raftright check` use). The pictures come from the model
// (`svg`, whose <desc> holds the state as text); the raw `state` is Rust Debug output and stays
// folded away.
'use strict';

const $ = (id) => document.getElementById(id);

/// Path ('' or '/0/4') -> promise of the steps possible from there.
const cache = new Map();

function stepsAfter(prefix) {
    if (!cache.has(prefix)) {
        const p = fetch('/.states' + prefix).then(async (r) => {
            if (!r.ok) {
                throw new Error(`${r.status} for ${prefix || '/'}: ${await r.text()}`);
            }
            return r.json();
        });
        p.catch(() => cache.delete(prefix));
        cache.set(prefix, p);
    }
    return cache.get(prefix);
}

const prefixOf = (indices) => indices.map((i) => '/' + i).join('');
const linkTo = (indices) => '#/steps' + prefixOf(indices);

/// The action indices named by the location, or null when it names none.
function parseLocation() {
    const [path, query] = location.hash.split('?');
    const m = path.match(/^#\/steps((?:\/\d+)*)\/?$/);
    if (!m) {
        return null;
    }
    let indices = m[1].split('/').filter((s) => s !== '').map(Number);
    // stateright's own links select an earlier step with ?offset=N.
    const offset = parseInt(new URLSearchParams(query || '').get('offset') || '0', 10);
    if (offset > 0) {
        indices = indices.slice(0, Math.max(1, indices.length - offset));
    }
    return indices;
}

/// The longest path visited that extends the selected one: the Path list keeps showing it so
/// that one can step back and forth.
let farthest = [];
let selected = [];
let showing = 0;
/// The selected state as Rust Debug output, shown only on request.
let rawState = '';
/// The selected state's own verdict, from its picture: the always-properties it violates and
/// the sometimes-properties it reaches. The properties list agrees with it.
let verdict = { violated: new Set(), reached: new Set() };
/// The checker's last /.status answer.
let lastStatus = null;

async function show() {
    const ticket = ++showing;
    const indices = parseLocation();
    if (indices === null || indices.length === 0) {
        const inits = await stepsAfter('');
        if (inits.length === 1 || indices === null) {
            location.replace('#/steps/0');
            return;
        }
    }
    const extends_ = indices.length <= farthest.length && indices.every((v, k) => farthest[k] === v);
    if (!extends_) {
        farthest = indices;
    }
    selected = indices;
    try {
        const views = [];
        for (let k = 0; k < farthest.length; k++) {
            const choices = await stepsAfter(prefixOf(farthest.slice(0, k)));
            const view = choices.find((c) => c.actionIndex === farthest[k]);
            if (!view || view.state === undefined) {
                throw new Error(`no state after action ${farthest[k]} at step ${k}: the link does not fit this model`);
            }
            views.push(view);
        }
        const next = await stepsAfter(prefixOf(selected));
        if (ticket !== showing) {
            return; // a newer location is being shown
        }
        render(views, next);
        $('error').hidden = true;
    } catch (e) {
        $('error').textContent = String(e);
        $('error').hidden = false;
        $('caption').textContent = 'Cannot show this path';
    }
}

function render(views, next) {
    const at = selected.length - 1;
    if (at < 0) {
        $('caption').textContent = 'Pick an initial state';
        $('view').innerHTML = '';
    } else {
        const view = views[at];
        $('caption').textContent = at === 0 ? 'Initial state' : `Step ${at}: ${view.action}`;
        $('view').innerHTML = view.svg || '';
        const desc = $('view').querySelector('svg > desc');
        $('text').textContent = desc ? desc.textContent : view.outcome || '';
        rawState = view.state;
        $('debug').textContent = $('raw').open ? rawState : '';
    }
    const mark = $('view').querySelector('.rr-verdict');
    const names = (attr) => new Set(((mark && mark.getAttribute(attr)) || '').split('|').filter((n) => n));
    verdict = { violated: names('data-violated'), reached: names('data-reached') };
    renderProperties();
    renderPath(views, at);
    renderNext(next);
}

function renderPath(views, at) {
    const list = $('path');
    list.replaceChildren();
    views.forEach((view, k) => {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = linkTo(farthest.slice(0, k + 1));
        a.textContent = k === 0 ? 'initial state' : view.action;
        if (k === at) {
            a.className = 'selected';
        } else if (k > at) {
            a.className = 'ahead';
        }
        li.appendChild(a);
        list.appendChild(li);
    });
}

/// Groups an action by its label (the model's `story::action`).
function kind(label) {
    if (/^lost: /.test(label) || / (crashes|restarts from storage)$/.test(label)) {
        return 'Faults';
    }
    if (/ -> /.test(label)) {
        return 'Deliver a message';
    }
    return 'Timers';
}

function renderNext(next) {
    const box = $('next');
    box.replaceChildren();
    if (selected.length === 0) {
        next.forEach((view, i) => box.appendChild(choice(view, [i], `initial state ${i}`)));
        return;
    }
    const groups = new Map([['Deliver a message', []], ['Timers', []], ['Faults', []]]);
    next.forEach((view) => groups.get(kind(view.action)).push(view));
    for (const [title, views] of groups) {
        if (views.length === 0) {
            continue;
        }
        const h = document.createElement('h3');
        h.textContent = `${title} (${views.length})`;
        box.appendChild(h);
        const ul = document.createElement('ul');
        ul.className = 'plain';
        for (const view of views) {
            const li = document.createElement('li');
            li.appendChild(choice(view, selected.concat([view.actionIndex]), view.action));
            ul.appendChild(li);
        }
        box.appendChild(ul);
    }
    if (next.length === 0) {
        box.textContent = 'No action is possible here (the model\'s bounds stop it).';
    }
}

function choice(view, indices, label) {
    if (view.state === undefined) {
        const span = document.createElement('span');
        span.className = 'ignored';
        span.textContent = label;
        span.title = 'This action changes nothing here';
        return span;
    }
    const a = document.createElement('a');
    a.href = linkTo(indices);
    a.textContent = label;
    return a;
}

function renderStatus(s) {
    const items = [
        ['Model', s.model.replace(/[0-9A-Za-z_]+::/g, '')],
        ['States', s.state_count.toLocaleString()],
        ['Unique states', s.unique_state_count.toLocaleString()],
        ['Max depth', s.max_depth.toLocaleString()],
        ['Progress', s.done ? 'done'
            : s.state_count > 1 || $('run').dataset.started === 'yes' ? 'running\u2026'
            : 'not run yet: states are explored as you visit them'],
    ];
    $('status').replaceChildren(...items.map(([k, v]) => {
        const li = document.createElement('li');
        li.innerHTML = '<b></b> <span></span>';
        li.firstChild.textContent = k + ':';
        li.lastChild.textContent = v;
        return li;
    }));
    $('run').disabled = s.done || $('run').dataset.started === 'yes';
    lastStatus = s;
    renderProperties();
}

/// Each property: the checker's verdict once it has one; before that, what the selected state
/// says of it (so that a state shown as violating a property is never "not checked yet").
function renderProperties() {
    const s = lastStatus;
    if (!s) {
        return;
    }
    const here = selected.join('/');
    $('properties').replaceChildren(...s.properties.map(([expectation, name, discovery]) => {
        const li = document.createElement('li');
        const mark = document.createElement('span');
        const always = expectation !== 'Sometimes';
        let verdictText;
        let link = discovery;
        if (discovery) {
            mark.textContent = always ? '\u2718' : '\u2714';
            mark.className = always ? 'bad' : 'ok';
            verdictText = always ? 'counterexample' : 'example';
        } else if (always && verdict.violated.has(name)) {
            mark.textContent = '\u2718';
            mark.className = 'bad';
            verdictText = 'VIOLATED in this state';
            link = here;
        } else if (!always && verdict.reached.has(name)) {
            mark.textContent = '\u2714';
            mark.className = 'ok';
            verdictText = 'reached in this state';
            link = here;
        } else if (s.done) {
            mark.textContent = always ? '\u2714' : '\u2718';
            mark.className = always ? 'ok' : 'bad';
            verdictText = always ? 'holds' : 'never reached';
        } else {
            mark.textContent = '\u2026';
            mark.className = 'dim';
            verdictText = always
                ? 'holds in this state; not checked everywhere yet'
                : 'not reached in this state; not checked everywhere yet';
        }
        const label = document.createElement('span');
        label.textContent = ` ${always ? 'always' : 'sometimes'} ${name}: `;
        li.append(mark, label);
        if (link) {
            const a = document.createElement('a');
            a.href = '#/steps/' + link;
            a.textContent = verdictText;
            li.append(a);
        } else {
            li.append(verdictText);
        }
        li.className = 'property';
        li.dataset.verdict = verdictText;
        return li;
    }));
}

async function refreshStatus() {
    try {
        const r = await fetch('/.status');
        const s = await r.json();
        renderStatus(s);
        if (s.done) {
            return;
        }
    } catch (e) {
        $('status').textContent = 'The Explorer does not answer: ' + e;
    }
    setTimeout(refreshStatus, 3000);
}

$('run').addEventListener('click', async () => {
    $('run').disabled = true;
    $('run').dataset.started = 'yes';
    await fetch('/.runtocompletion', { method: 'POST' });
    refreshStatus();
});

$('raw').addEventListener('toggle', () => {
    $('debug').textContent = $('raw').open ? rawState : '';
});

document.addEventListener('keydown', (ev) => {
    if (ev.target.closest && ev.target.closest('input, textarea, button')) {
        return;
    }
    if ((ev.key === 'ArrowUp' || ev.key === 'k') && selected.length > 1) {
        location.hash = linkTo(selected.slice(0, -1));
        ev.preventDefault();
    } else if ((ev.key === 'ArrowDown' || ev.key === 'j') && farthest.length > selected.length) {
        location.hash = linkTo(farthest.slice(0, selected.length + 1));
        ev.preventDefault();
    }
});

window.addEventListener('hashchange', show);
show();
refreshStatus();
