//! The Explorer's picture of a path (`Model::as_svg`): which properties fail in the state
//! reached, the servers' logs side by side (entries aligned by index, committed ones filled),
//! the clients, the messages in flight, and a sequence diagram of the steps that led here
//! with one short label per step ("S0 -> S1 RequestVote(term 1, last 0:0): votes for S0").
//!
//! Everything is drawn from `story`'s renderings, so the picture, the Explorer's text and the
//! counterexamples printed by `check` use the same words. The SVG's `<desc>` holds
//! `story::state` of the last state: the Explorer shows it as text, including for the initial
//! state, for which stateright offers no `format_step`.

use super::properties::servers;
use super::{Action, NodeState, RaftModel, State, story};
use crate::raft::{Role, ServerState};
use stateright::actor::{ActorModelAction, Id};
use stateright::{Expectation, Model, Path};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Width of one character of the 12px monospace font, in pixels (a close upper bound).
const CHAR_W: usize = 8;
const LINE_H: usize = 18;
const MARGIN: usize = 12;
/// Horizontal distance between two lifelines of the sequence diagram.
const LANE_W: usize = 44;
/// Vertical distance between two steps of the sequence diagram.
const STEP_H: usize = 22;

/// The whole picture for the last state of `path`.
pub fn svg(model: &RaftModel, path: Path<State, Action>) -> String {
    let steps = path.into_vec();
    let last = &steps.last().expect("a path has a state").0;
    let mut c = Canvas::default();
    for line in wrap(&format!("config: {}", model.cfg), 90) {
        c.text(MARGIN, "rr-dim", &line);
    }
    properties(model, last, &mut c);
    c.gap();
    c.heading("Servers (log entries are index:term:command; filled = committed)");
    servers_grid(model, last, &mut c);
    if model.cfg.clients > 0 {
        c.gap();
        c.heading("Clients");
        for (i, a) in last.actor_states.iter().enumerate() {
            if let NodeState::Client(cs) = &**a {
                c.text(
                    MARGIN,
                    "rr-text",
                    &story::client_line(&model.cfg, Id::from(i), cs),
                );
            }
        }
    }
    c.gap();
    let in_flight = story::in_flight(&model.cfg, last);
    c.heading(&format!("Messages in flight ({})", in_flight.len()));
    if in_flight.is_empty() {
        c.text(MARGIN, "rr-dim", "none");
    }
    for line in &in_flight {
        c.text(MARGIN, "rr-text", line);
    }
    c.gap();
    sequence(model, &steps, &mut c);
    c.finish(&story::state(&model.cfg, last))
}

/// One line for the safety properties (red when one fails here) and one for the examples.
fn properties(model: &RaftModel, st: &State, c: &mut Canvas) {
    let mut broken = Vec::new();
    let mut always = 0;
    let mut reached = Vec::new();
    for p in model.properties() {
        let holds = (p.condition)(model, st);
        match p.expectation {
            Expectation::Always | Expectation::Eventually => {
                always += 1;
                if !holds {
                    broken.push(p.name);
                }
            }
            Expectation::Sometimes if holds => reached.push(p.name),
            Expectation::Sometimes => {}
        }
    }
    // The same verdict for the page's properties list, which must agree with it.
    let _ = writeln!(
        c.body,
        "<g class='rr-verdict' data-violated='{}' data-reached='{}'></g>",
        esc(&broken.join("|")),
        esc(&reached.join("|"))
    );
    if broken.is_empty() {
        c.text(
            MARGIN,
            "rr-ok",
            &format!("\u{2714} all {always} always-properties hold in this state"),
        );
    } else {
        c.text(
            MARGIN,
            "rr-bad",
            &format!("\u{2718} VIOLATED in this state: {}", broken.join(", ")),
        );
    }
    if !reached.is_empty() {
        c.text(
            MARGIN,
            "rr-dim",
            &format!("examples reached here: {}", reached.join(", ")),
        );
    }
}

fn role_class(s: &ServerState) -> &'static str {
    match s.role {
        Role::Leader => "rr-leader",
        Role::Candidate { .. } | Role::PreCandidate { .. } => "rr-candidate",
        Role::Follower { .. } => "rr-follower",
    }
}

/// One row per server: name, role, term, vote and commit point, then the log as one box per
/// entry, boxes of the same index in the same column.
fn servers_grid(model: &RaftModel, st: &State, c: &mut Canvas) {
    let cfg = &model.cfg;
    let rows: Vec<(usize, &ServerState)> = st
        .actor_states
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_server().map(|s| (i, s)))
        .collect();
    let roles: Vec<String> = rows.iter().map(|(_, s)| story::role(cfg, s)).collect();
    let role_w = roles.iter().map(|r| r.len()).max().unwrap_or(0);
    let facts: Vec<String> = rows
        .iter()
        .map(|(_, s)| {
            let voted = s.hard.voted_for.map_or("-".into(), |v| story::node(cfg, v));
            format!(
                "term {}  voted {voted:2}  commit {}",
                s.current_term(),
                s.commit_index
            )
        })
        .collect();
    let facts_w = facts.iter().map(|f| f.len()).max().unwrap_or(0);
    let cell_chars = servers(st)
        .iter()
        .flat_map(|s| {
            s.log()
                .iter()
                .enumerate()
                .map(|(k, e)| story::entry(k as u64 + 1, e).len())
        })
        .max()
        .unwrap_or(0)
        .max(8);
    let cell_w = cell_chars * CHAR_W + 10;
    let role_x = MARGIN + 4 * CHAR_W;
    let facts_x = role_x + (role_w + 2) * CHAR_W;
    let log_x = facts_x + (facts_w + 2) * CHAR_W;
    for ((i, s), (role, facts)) in rows.iter().zip(roles.iter().zip(&facts)) {
        let crashed = st.crashed[*i];
        let y = c.next_line();
        let dim = if crashed { " rr-crashed" } else { "" };
        c.put(
            MARGIN,
            y,
            &format!("rr-name{dim}"),
            &story::node(cfg, Id::from(*i)),
        );
        c.put(role_x, y, &format!("{}{dim}", role_class(s)), role);
        c.put(facts_x, y, &format!("rr-text{dim}"), facts);
        for (k, e) in s.log().iter().enumerate() {
            let index = k as u64 + 1;
            let x = log_x + k * (cell_w + 4);
            let state = if index <= s.commit_index {
                "rr-committed"
            } else {
                "rr-uncommitted"
            };
            let term = format!("rr-term{}", e.term % 6);
            let _ = writeln!(
                c.body,
                "<rect x='{x}' y='{}' width='{cell_w}' height='{}' rx='3' class='{state} {term}'/>",
                y - LINE_H + 4,
                LINE_H
            );
            c.put(x + 5, y, "rr-entry", &story::entry(index, e));
            c.widen(x + cell_w);
        }
        if s.log().is_empty() {
            c.put(log_x, y, "rr-dim", "(empty log)");
        }
        if crashed {
            let x = log_x + s.log().len().max(1) * (cell_w + 4) + 6;
            c.put(
                x,
                y,
                "rr-bad",
                "crashed: restarts from its saved term, vote and log",
            );
        }
        if s.is_leader() {
            let parts: Vec<String> = s
                .progress
                .iter()
                .map(|(id, p)| {
                    format!(
                        "{} next {} match {}",
                        story::node(cfg, id),
                        p.next_index,
                        p.match_index
                    )
                })
                .collect();
            c.text(
                role_x,
                "rr-dim",
                &format!("replication: {}", parts.join(" | ")),
            );
        }
    }
}

/// The steps of the path as a sequence diagram: a lifeline per actor, an arrow per delivered
/// message (from the step that sent it), a mark per timeout, loss, crash or restart, and a
/// label per step in a column of its own so that labels never cross the arrows.
fn sequence(model: &RaftModel, steps: &[(State, Option<Action>)], c: &mut Canvas) {
    let cfg = &model.cfg;
    let n_steps = steps.len() - 1;
    c.heading(&format!(
        "Steps ({n_steps}){}",
        if n_steps == 0 {
            ": pick a next action to take one"
        } else {
            ""
        }
    ));
    let actors = steps[0].0.actor_states.len();
    let lane = |i: Id| MARGIN + 10 + usize::from(i) * LANE_W;
    let names_y = c.next_line();
    for i in 0..actors {
        c.put(
            lane(Id::from(i)) - 8,
            names_y,
            "rr-name",
            &story::node(cfg, Id::from(i)),
        );
    }
    let top = names_y + 6;
    let row_y = |t: usize| top + 10 + t * STEP_H;
    let bottom = row_y(n_steps) + 8;
    for i in 0..actors {
        let x = lane(Id::from(i));
        let _ = writeln!(
            c.body,
            "<line x1='{x}' y1='{top}' x2='{x}' y2='{bottom}' class='rr-lifeline'/>"
        );
    }
    let label_x = lane(Id::from(actors)) + 4;
    c.put(label_x, row_y(0) + 4, "rr-dim", "0. initial state");
    // When each message in flight was (last) sent: the step whose state first holds it.
    let mut sent_at: BTreeMap<(Id, Id, &crate::raft::Msg), usize> = BTreeMap::new();
    for (src, dst, m) in story::network_multiset(&steps[0].0.network).into_keys() {
        sent_at.insert((src, dst, m), 0);
    }
    for (t, pair) in steps.windows(2).enumerate() {
        let t = t + 1;
        let (before, Some(action)) = (&pair[0].0, &pair[0].1) else {
            continue;
        };
        let after = &pair[1].0;
        let y = row_y(t);
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                let from = sent_at.get(&(*src, *dst, msg)).copied().unwrap_or(0);
                arrow(c, (lane(*src), row_y(from)), (lane(*dst), y), "rr-arrow");
            }
            ActorModelAction::Drop(env) => {
                let from = sent_at.get(&(env.src, env.dst, &env.msg)).copied();
                let (x1, x2) = (lane(env.src), lane(env.dst));
                let mid = (x1 + x2) / 2;
                arrow(c, (x1, row_y(from.unwrap_or(0))), (mid, y), "rr-lost");
                c.put(mid - 4, y + 4, "rr-bad", "\u{2715}");
            }
            ActorModelAction::Timeout(id, _) | ActorModelAction::SelectRandom { actor: id, .. } => {
                let _ = writeln!(
                    c.body,
                    "<circle cx='{}' cy='{y}' r='6' class='rr-timer'/>",
                    lane(*id)
                );
            }
            ActorModelAction::Crash(id) => {
                c.put(lane(*id) - 5, y + 5, "rr-bad rr-mark", "\u{2715}");
            }
            ActorModelAction::Recover(id) => {
                let _ = writeln!(
                    c.body,
                    "<circle cx='{}' cy='{y}' r='6' class='rr-recover'/>",
                    lane(*id)
                );
            }
        }
        let before_msgs = story::network_multiset(&before.network);
        for (key, n) in story::network_multiset(&after.network) {
            if before_msgs.get(&key).is_none_or(|&b| b < n) {
                sent_at.insert(key, t);
            }
        }
        let what = story::action(cfg, action);
        let step = story::step(cfg, before, action, after);
        let effect = step.strip_prefix(what.as_str()).unwrap_or("");
        let last = if t == n_steps { " rr-current" } else { "" };
        let _ = writeln!(
            c.body,
            "<text x='{label_x}' y='{}' class='rr-label{last}'>{t}. {}<tspan class='rr-effect'>{}</tspan></text>",
            y + 4,
            esc(&what),
            esc(effect)
        );
        c.widen(label_x + (what.len() + effect.len() + 5) * CHAR_W);
    }
    c.y = bottom + 4;
}

fn arrow(c: &mut Canvas, (x1, y1): (usize, usize), (x2, y2): (usize, usize), class: &str) {
    let _ = writeln!(
        c.body,
        "<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' class='{class}' marker-end='url(#rr-arrowhead)'/>"
    );
}

/// Breaks `text` at spaces into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Escapes text for SVG (XML) content.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

/// A top-to-bottom layout of text lines and shapes.
#[derive(Default)]
struct Canvas {
    body: String,
    /// Baseline of the last line placed.
    y: usize,
    width: usize,
}

impl Canvas {
    fn next_line(&mut self) -> usize {
        self.y += LINE_H;
        self.y
    }

    fn gap(&mut self) {
        self.y += LINE_H / 2;
    }

    fn widen(&mut self, x: usize) {
        self.width = self.width.max(x + MARGIN);
    }

    fn put(&mut self, x: usize, y: usize, class: &str, text: &str) {
        let _ = writeln!(
            self.body,
            "<text x='{x}' y='{y}' class='{class}'>{}</text>",
            esc(text)
        );
        self.widen(x + text.chars().count() * CHAR_W);
    }

    fn text(&mut self, x: usize, class: &str, text: &str) {
        let y = self.next_line();
        self.put(x, y, class, text);
    }

    fn heading(&mut self, text: &str) {
        self.text(MARGIN, "rr-heading", text);
    }

    fn finish(self, desc: &str) -> String {
        let (w, h) = (self.width.max(400), self.y + MARGIN);
        format!(
            "<svg class='rr-view' version='1.1' xmlns='http://www.w3.org/2000/svg' \
             width='{w}' height='{h}' viewBox='0 0 {w} {h}'>\
             <desc>{}</desc>{STYLE}\
             <defs><marker id='rr-arrowhead' markerWidth='10' markerHeight='8' refX='10' \
             refY='4' orient='auto'><polygon points='0 0, 10 4, 0 8' class='rr-head'/></marker></defs>\
             <rect width='{w}' height='{h}' rx='8' class='rr-bg'/>\n{}</svg>",
            esc(desc),
            self.body
        )
    }
}

/// Colours for a dark background; every class is prefixed `rr-` because a `<style>` inside
/// an inline SVG applies to the whole page.
const STYLE: &str = "<style>\
.rr-view text{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:12px;fill:#e7ecef;white-space:pre}\
.rr-bg{fill:#10243a}\
.rr-heading{font-weight:bold;fill:#f2e27a !important}\
.rr-dim{fill:#9fb3c8 !important}\
.rr-ok{fill:#6fcf97 !important}\
.rr-bad{fill:#ff7b7b !important;font-weight:bold}\
.rr-name{font-weight:bold}\
.rr-leader{fill:#f2c94c !important;font-weight:bold}\
.rr-candidate{fill:#f2994a !important;font-weight:bold}\
.rr-follower{fill:#9ecbff !important}\
.rr-crashed{opacity:0.45}\
.rr-entry{fill:#ffffff !important}\
.rr-committed{stroke-width:1.5;fill-opacity:0.55}\
.rr-uncommitted{stroke-width:1.5;stroke-dasharray:4 3;fill-opacity:0.12}\
.rr-term0{fill:#9e9e9e;stroke:#9e9e9e}.rr-term1{fill:#2f80ed;stroke:#56ccf2}\
.rr-term2{fill:#27ae60;stroke:#6fcf97}.rr-term3{fill:#9b51e0;stroke:#bb6bd9}\
.rr-term4{fill:#c06c00;stroke:#f2994a}.rr-term5{fill:#b83b3b;stroke:#eb5757}\
.rr-lifeline{stroke:#3d6283;stroke-width:2}\
.rr-arrow{stroke:#f2e27a;stroke-width:1.5}\
.rr-lost{stroke:#ff7b7b;stroke-width:1.5;stroke-dasharray:5 4}\
.rr-head{fill:#f2e27a}\
.rr-timer{fill:#9ecbff}.rr-recover{fill:#6fcf97}\
.rr-mark{font-size:16px !important}\
.rr-label{fill:#f2e27a !important}\
.rr-effect{fill:#c8d6e5}\
.rr-current{font-weight:bold}\
</style>";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelCfg;

    fn small() -> RaftModel {
        RaftModel::new(ModelCfg {
            clients: 1,
            max_term: 2,
            max_log_len: 2,
            ..ModelCfg::default()
        })
    }

    /// Follows actions by their labels from the initial state.
    fn path(model: &RaftModel, labels: &[&str]) -> Path<State, Action> {
        let mut state = model.init_states().remove(0);
        let mut actions = Vec::new();
        for label in labels {
            let mut choices = Vec::new();
            model.actions(&state, &mut choices);
            let action = choices
                .into_iter()
                .find(|a| story::action(&model.cfg, a) == *label)
                .unwrap_or_else(|| panic!("no action {label}"));
            state = model.next_state(&state, action.clone()).expect("a step");
            actions.push(action);
        }
        let init = model.init_states().remove(0);
        Path::from_actions(model, init, &actions).expect("a path")
    }

    #[test]
    fn shows_servers_clients_and_messages_of_the_initial_state() {
        let model = small();
        let svg = svg(&model, path(&model, &[]));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(">S0</text>") && svg.contains(">Follower</text>"));
        assert!(svg.contains("term 0"));
        assert!(svg.contains("C0 waiting for #1 (Put x=a) at S0"));
        assert!(svg.contains("C0 -&gt; S0 Request(#1 Put x=a)"));
        assert!(svg.contains("all 14 always-properties hold"));
        assert!(svg.contains("<g class='rr-verdict' data-violated='' data-reached="));
        assert!(!svg.contains("Envelope") && !svg.contains("ActorModelState"));
    }

    #[test]
    fn labels_each_step_with_its_action_and_effect() {
        let model = small();
        let svg = svg(
            &model,
            path(
                &model,
                &[
                    "S0 election timeout",
                    "S0 -> S1 RequestVote(term 1, last 0:0)",
                    "S1 -> S0 Vote(term 1, granted)",
                ],
            ),
        );
        assert!(svg.contains("1. S0 election timeout"));
        assert!(svg.contains("2. S0 -&gt; S1 RequestVote(term 1, last 0:0)"));
        assert!(svg.contains("becomes leader in term 1"));
        assert!(svg.contains(">Leader</text>"));
        assert!(svg.contains("replication: S1 next"));
        assert!(svg.contains("examples reached here: a leader is elected"));
    }
}
