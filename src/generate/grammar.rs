//! The phrase banks notes are written from, and the small template language
//! they are written in (`notes.grammar`, compiled once per process).
//!
//! A bank is a list of alternatives; an alternative is text with slots:
//!
//! - `<name>`: one alternative of another bank, itself expanded;
//! - `<^name>`: the same, first letter capitalised (a sentence start);
//! - `<name*2-4>`: two to four distinct alternatives as a list, "a, b and c";
//! - `<$var>` and `<^$var>`: a value the note supplies (age, complaint, ...);
//! - `{a|b|}`: one of the inline choices (here "a", "b" or nothing),
//!   which may nest and hold slots.
//!
//! Variety comes from the product of a sentence's slots, which is what keeps
//! any one sentence out of all but a small share of notes. Every draw comes
//! from the caller's RNG, so the same stream writes the same words.
//!
//! Tracery, the usual tool for this, has no Rust port that takes a caller's
//! seeded RNG, which determinism needs; the language here is the part of it
//! datagen uses, in a few hundred lines.

use std::sync::LazyLock;

use foldhash::{HashMap, HashMapExt};

use rand::RngExt;
use rand::rngs::ChaCha8Rng;

const SOURCE: &str = include_str!("notes.grammar");

/// The banks, compiled from [`SOURCE`] on first use.
pub static GRAMMAR: LazyLock<Grammar> = LazyLock::new(|| Grammar::parse(SOURCE));

/// A note's own values for its `<$var>` slots.
pub type Vars<'a> = [(&'a str, &'a str)];

/// A template as parsed: a tree, flattened into [`Node`]s once every bank
/// is known.
#[derive(Debug)]
enum Parsed {
    Text(&'static str),
    Choice(Vec<Vec<Parsed>>),
    Bank {
        name: &'static str,
        capital: bool,
        list: Option<(u16, u16)>,
    },
    Var {
        name: &'static str,
        capital: bool,
    },
}

/// A sequence of nodes: `nodes[start..start + len]` of [`Grammar::nodes`].
#[derive(Clone, Copy, Debug)]
struct Seq {
    start: u32,
    len: u32,
}

#[derive(Debug)]
enum Node {
    Text(&'static str),
    /// One of the sequences `seqs[first..first + count]`.
    Choice {
        first: u32,
        count: u32,
    },
    Bank {
        /// Index into [`Grammar::banks`] (`u32::MAX`: names no bank).
        id: u32,
        capital: bool,
        /// `*min-max`: a list of that many distinct alternatives.
        list: Option<(u16, u16)>,
    },
    Var {
        name: &'static str,
        capital: bool,
    },
}

/// The compiled grammar. Every template lives in two flat tables, in the
/// source's order, rather than in a tree of small vectors: expanding a note
/// walks thousands of nodes, and chasing the tree's pointers through the
/// cache was most of its time.
#[derive(Debug)]
pub struct Grammar {
    ids: HashMap<&'static str, usize>,
    /// Banks that have `<bank>.without.<condition>` variants.
    refined: foldhash::HashSet<&'static str>,
    /// The banks named `<prefix>.<rest>`, as `rest`, by `prefix`.
    by_prefix: HashMap<&'static str, Vec<&'static str>>,
    /// The nodes of every sequence, each sequence's contiguous.
    nodes: Vec<Node>,
    /// The sequences: each choice's, each bank's alternatives.
    seqs: Vec<Seq>,
    /// Each bank's alternatives, as a range of `seqs`.
    banks: Vec<std::ops::Range<usize>>,
    /// Slots naming a bank with no alternatives, as (bank, slot).
    #[cfg_attr(not(test), allow(dead_code))]
    unresolved: Vec<(&'static str, &'static str)>,
}

/// Builds [`Grammar::nodes`] and [`Grammar::seqs`] from parsed templates.
struct Flattener<'g> {
    ids: &'g HashMap<&'static str, usize>,
    parsed: &'g [Vec<Vec<Parsed>>],
    nodes: Vec<Node>,
    seqs: Vec<Seq>,
    unresolved: Vec<(&'static str, &'static str)>,
}

impl Flattener<'_> {
    /// The sequence `parsed` becomes (in bank `bank`); the sequences of its
    /// choices are added first, so its own nodes are contiguous.
    fn seq(&mut self, bank: &'static str, parsed: &[Parsed]) -> Seq {
        let mut own = Vec::with_capacity(parsed.len());
        for node in parsed {
            own.push(match node {
                Parsed::Text(text) => Node::Text(text),
                Parsed::Choice(choices) => {
                    let seqs: Vec<Seq> = choices.iter().map(|c| self.seq(bank, c)).collect();
                    let first = self.seqs.len() as u32;
                    self.seqs.extend(seqs);
                    Node::Choice {
                        first,
                        count: choices.len() as u32,
                    }
                }
                Parsed::Bank {
                    name,
                    capital,
                    list,
                } => {
                    let id = self.ids.get(name).copied();
                    if id.is_none_or(|id| self.parsed[id].is_empty()) {
                        self.unresolved.push((bank, name));
                    }
                    Node::Bank {
                        id: id.and_then(|i| u32::try_from(i).ok()).unwrap_or(u32::MAX),
                        capital: *capital,
                        list: *list,
                    }
                }
                Parsed::Var { name, capital } => Node::Var {
                    name,
                    capital: *capital,
                },
            });
        }
        let start = self.nodes.len() as u32;
        self.nodes.extend(own);
        Seq {
            start,
            len: parsed.len() as u32,
        }
    }
}

/// `with` called on `parts` joined, in a buffer of the thread's own.
fn joined<T>(parts: &[&str], with: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    NAME.with_borrow_mut(|name| {
        name.clear();
        parts.iter().for_each(|part| name.push_str(part));
        with(name)
    })
}

/// The capacity a sentence's own `String` starts with.
const SENTENCE: usize = 128;

/// Expansion goes no deeper than this, so a bank that (by mistake) names
/// itself ends instead of overflowing the stack.
const MAX_DEPTH: u32 = 16;

impl Grammar {
    fn parse(source: &'static str) -> Grammar {
        let mut ids: HashMap<&'static str, usize> = HashMap::new();
        let mut parsed: Vec<Vec<Vec<Parsed>>> = Vec::new();
        let mut current: Option<usize> = None;
        for line in source.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('@') {
                let name = name.trim();
                let id = *ids.entry(name).or_insert_with(|| {
                    parsed.push(Vec::new());
                    parsed.len() - 1
                });
                current = Some(id);
            } else if let Some(id) = current {
                let (nodes, _) = parse_seq(line.trim_start(), false);
                parsed[id].push(nodes);
            }
        }
        let mut names = vec![""; parsed.len()];
        for (&name, &id) in &ids {
            names[id] = name;
        }
        let mut flat = Flattener {
            ids: &ids,
            parsed: &parsed,
            nodes: Vec::new(),
            seqs: Vec::new(),
            unresolved: Vec::new(),
        };
        let mut banks = Vec::with_capacity(parsed.len());
        for (alternatives, name) in parsed.iter().zip(names) {
            let seqs: Vec<Seq> = alternatives.iter().map(|a| flat.seq(name, a)).collect();
            let first = flat.seqs.len();
            flat.seqs.extend(seqs);
            banks.push(first..flat.seqs.len());
        }
        let Flattener {
            nodes,
            seqs,
            unresolved,
            ..
        } = flat;
        let refined = ids
            .keys()
            .filter_map(|name| name.split_once(".without.").map(|(base, _)| base))
            .collect();
        let mut by_prefix: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for (prefix, rest) in ids.keys().filter_map(|name| name.split_once('.')) {
            by_prefix.entry(prefix).or_default().push(rest);
        }
        Grammar {
            ids,
            refined,
            by_prefix,
            nodes,
            seqs,
            banks,
            unresolved,
        }
    }

    /// The bank whose name is `parts` joined, if it has alternatives, by
    /// its own `'static` name: names built from a scenario or a condition
    /// are looked up for every note, and building them with `format!`
    /// (an allocation each) cost more than the lookup.
    pub fn find(&self, parts: &[&str]) -> Option<&'static str> {
        joined(parts, |name| {
            let (&found, &id) = self.ids.get_key_value(name)?;
            self.alternatives(id).map(|_| found)
        })
    }

    /// The names of the banks named `<prefix>.<name>`, in no order.
    pub fn under(&self, prefix: &str) -> &[&'static str] {
        self.by_prefix.get(prefix).map_or(&[], Vec::as_slice)
    }

    fn get(&self, bank: &str) -> Option<&[Seq]> {
        self.alternatives(*self.ids.get(bank)?)
    }

    /// Bank `id`'s alternatives, if it has any.
    fn alternatives(&self, id: usize) -> Option<&[Seq]> {
        let range = self.banks.get(id)?.clone();
        self.seqs.get(range).filter(|a| !a.is_empty())
    }

    fn nodes(&self, seq: Seq) -> &[Node] {
        let start = seq.start as usize;
        self.nodes
            .get(start..start + seq.len as usize)
            .unwrap_or_default()
    }

    /// Whether the bank named `parts` joined has variants for patients
    /// without a condition.
    pub fn is_refined(&self, parts: &[&str]) -> bool {
        joined(parts, |name| self.refined.contains(name))
    }

    #[cfg(test)]
    fn has(&self, bank: &str) -> bool {
        self.get(bank).is_some()
    }

    /// Appends one expansion of `bank` to `out` (nothing if there is no such bank).
    pub fn say(&self, rng: &mut ChaCha8Rng, bank: &str, vars: &Vars<'_>, out: &mut String) {
        if let Some(alternatives) = self.get(bank) {
            let pick = rng.random_range(0..alternatives.len());
            self.expand(rng, alternatives[pick], vars, out, 0);
        }
    }

    /// [`Grammar::say`], returning the text.
    pub fn text(&self, rng: &mut ChaCha8Rng, bank: &str, vars: &Vars<'_>) -> String {
        // Room for a sentence or two: growing from empty reallocated
        // several times per sentence.
        let mut out = String::with_capacity(SENTENCE);
        self.say(rng, bank, vars, &mut out);
        out
    }

    /// One alternative of `bank` chosen by `key` (a well-mixed number from a
    /// patient's and a purpose), so the same patient always gets the same one. Its own
    /// choices, if any, still draw from `rng`.
    pub fn own(
        &self,
        rng: &mut ChaCha8Rng,
        key: u64,
        bank: &str,
        vars: &Vars<'_>,
        out: &mut String,
    ) {
        if let Some(alternatives) = self.get(bank) {
            let pick = (key % alternatives.len() as u64) as usize;
            self.expand(rng, alternatives[pick], vars, out, 0);
        }
    }

    /// Between `least` and `most` distinct alternatives of `bank`, each
    /// expanded, in a random order: the lines of a plan, say.
    pub fn lines(
        &self,
        rng: &mut ChaCha8Rng,
        bank: &str,
        least: usize,
        most: usize,
        vars: &Vars<'_>,
    ) -> Vec<String> {
        let Some(alternatives) = self.get(bank) else {
            return Vec::new();
        };
        let most = most.min(alternatives.len());
        let count = rng.random_range(least.min(most)..=most);
        rand::seq::index::sample(rng, alternatives.len(), count)
            .iter()
            .map(|pick| {
                let mut out = String::with_capacity(SENTENCE);
                self.expand(rng, alternatives[pick], vars, &mut out, 0);
                out
            })
            .collect()
    }

    /// The alternatives of `bank` that are plain text (no slots or choices).
    pub fn plain(&self, bank: &str) -> Vec<&'static str> {
        self.get(bank)
            .map(|alternatives| {
                alternatives
                    .iter()
                    .filter_map(|&a| self.plain_text(a))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`Grammar::own`] for a bank of plain text: no randomness needed.
    pub fn own_plain(&self, key: u64, bank: &str) -> &'static str {
        match self.get(bank) {
            Some(alternatives) => self
                .plain_text(alternatives[(key % alternatives.len() as u64) as usize])
                .unwrap_or(""),
            None => "",
        }
    }

    fn expand(
        &self,
        rng: &mut ChaCha8Rng,
        seq: Seq,
        vars: &Vars<'_>,
        out: &mut String,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for node in self.nodes(seq) {
            match *node {
                Node::Text(text) => out.push_str(text),
                Node::Choice { first, count } => {
                    let pick = rng.random_range(0..count as usize);
                    if let Some(&choice) = self.seqs.get(first as usize + pick) {
                        self.expand_seq(rng, choice, vars, out, depth + 1);
                    }
                }
                Node::Var { name, capital } => {
                    let start = out.len();
                    if let Some((_, value)) = vars.iter().find(|(n, _)| *n == name) {
                        out.push_str(value);
                    }
                    if capital {
                        capitalise_from(out, start);
                    }
                }
                Node::Bank { id, capital, list } => {
                    let Some(alternatives) = self.alternatives(id as usize) else {
                        continue;
                    };
                    let start = out.len();
                    match list {
                        None => {
                            let pick = rng.random_range(0..alternatives.len());
                            self.expand_seq(rng, alternatives[pick], vars, out, depth + 1);
                        }
                        Some((least, most)) => {
                            let most = usize::from(most).min(alternatives.len());
                            let count = rng.random_range(usize::from(least).min(most)..=most);
                            let picks = rand::seq::index::sample(rng, alternatives.len(), count);
                            for (i, pick) in picks.iter().enumerate() {
                                if i > 0 {
                                    out.push_str(if i + 1 == count { " and " } else { ", " });
                                }
                                self.expand_seq(rng, alternatives[pick], vars, out, depth + 1);
                            }
                        }
                    }
                    if capital {
                        capitalise_from(out, start);
                    }
                }
            }
        }
    }

    /// [`Grammar::expand`], with the commonest sequences (plain text, or
    /// nothing: most choices and alternatives) written without a call.
    #[inline]
    fn expand_seq(
        &self,
        rng: &mut ChaCha8Rng,
        seq: Seq,
        vars: &Vars<'_>,
        out: &mut String,
        depth: u32,
    ) {
        match self.nodes(seq) {
            _ if depth > MAX_DEPTH => {}
            [] => {}
            [Node::Text(text)] => out.push_str(text),
            _ => self.expand(rng, seq, vars, out, depth),
        }
    }

    /// The text of `seq` if it is plain text (no slots or choices).
    fn plain_text(&self, seq: Seq) -> Option<&'static str> {
        match self.nodes(seq) {
            [Node::Text(text)] => Some(text),
            _ => None,
        }
    }

    #[cfg(test)]
    /// What is wrong with the grammar: slots naming no bank, or banks with
    /// no alternatives. The unit tests require none.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .unresolved
            .iter()
            .map(|(bank, name)| format!("@{bank} names <{name}>, which has no alternatives"))
            .collect();
        for (bank, &id) in &self.ids {
            if self.alternatives(id).is_none() {
                problems.push(format!("@{bank} has no alternatives"));
            }
        }
        problems.sort();
        problems
    }

    #[cfg(test)]
    /// The `<$var>` names the grammar uses.
    pub fn variables(&self) -> Vec<&'static str> {
        let mut found: Vec<&'static str> = self
            .nodes
            .iter()
            .filter_map(|node| match node {
                Node::Var { name, .. } => Some(*name),
                _ => None,
            })
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    #[cfg(test)]
    pub fn bank_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.ids.keys().copied()
    }
}

fn capitalise_from(out: &mut String, start: usize) {
    // Nearly every expansion starts with an ASCII letter: upper-cased in
    // place, without a `String` for the upper case.
    if let Some(first) = out.get_mut(start..start + 1) {
        first.make_ascii_uppercase();
        return;
    }
    if let Some(c) = out.get(start..).and_then(|rest| rest.chars().next())
        && c.is_lowercase()
    {
        let upper: String = c.to_uppercase().collect();
        out.replace_range(start..start + c.len_utf8(), &upper);
    }
}

/// Parses text up to the end, or (inside `{...}`) up to the `|` or `}` that
/// ends the current choice; returns the nodes and what is left, starting at
/// that delimiter. Malformed slots are kept as text.
fn parse_seq(mut s: &'static str, in_choice: bool) -> (Vec<Parsed>, &'static str) {
    let mut nodes = Vec::new();
    loop {
        let stop = s.find(|c: char| c == '<' || c == '{' || (in_choice && (c == '|' || c == '}')));
        let Some(at) = stop else {
            if !s.is_empty() {
                nodes.push(Parsed::Text(s));
            }
            return (nodes, "");
        };
        if at > 0 {
            nodes.push(Parsed::Text(&s[..at]));
        }
        s = &s[at..];
        match s.as_bytes()[0] {
            b'<' => {
                let Some(end) = s.find('>') else {
                    nodes.push(Parsed::Text(s));
                    return (nodes, "");
                };
                nodes.push(slot(&s[1..end]));
                s = &s[end + 1..];
            }
            b'{' => {
                let mut choices = Vec::new();
                let mut rest = &s[1..];
                loop {
                    let (choice, after) = parse_seq(rest, true);
                    choices.push(choice);
                    match after.as_bytes().first() {
                        Some(b'|') => rest = &after[1..],
                        Some(b'}') => {
                            rest = &after[1..];
                            break;
                        }
                        _ => {
                            rest = after;
                            break;
                        }
                    }
                }
                nodes.push(Parsed::Choice(choices));
                s = rest;
            }
            // A `|` or `}` ending this choice.
            _ => return (nodes, s),
        }
    }
}

fn slot(inner: &'static str) -> Parsed {
    let (capital, inner) = match inner.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    if let Some(name) = inner.strip_prefix('$') {
        return Parsed::Var { name, capital };
    }
    let (name, list) = match inner.split_once('*') {
        Some((name, range)) => {
            let (least, most) = range.split_once('-').unwrap_or((range, range));
            let list = least.parse().ok().zip(most.parse().ok());
            (name, list)
        }
        None => (inner, None),
    };
    Parsed::Bank {
        name,
        capital,
        list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_grammar_names_only_banks_it_has() {
        assert_eq!(GRAMMAR.problems(), Vec::<String>::new());
    }

    /// The values notes pass for `<$var>` slots (see `notes/`).
    const SUPPLIED: &[&str] = &[
        "age",
        "assessment_lower",
        "author",
        "cc",
        "colleague",
        "day",
        "day_before",
        "days",
        "ddx",
        "dept",
        "died",
        "dispo",
        "focus",
        "general",
        "meds",
        "monitoring",
        "months",
        "onset",
        "pain",
        "pending",
        "pmh",
        "pmh_short",
        "sex",
        "shift",
        "site",
        "stamp",
        "symptoms",
        "time",
        "wean",
        "who",
    ];

    #[test]
    fn every_variable_the_grammar_uses_is_one_a_note_supplies() {
        for var in GRAMMAR.variables() {
            assert!(SUPPLIED.contains(&var), "<${var}> is supplied by no note");
        }
    }

    #[test]
    fn every_encounter_type_has_the_generic_banks_a_custom_scenario_falls_back_to() {
        let parts: [(&str, &[&str]); 3] = [
            ("outpatient", &["subjective", "exam", "assessment", "plan"]),
            ("emergency", &["story", "exam", "course"]),
            (
                "inpatient",
                &[
                    "onset",
                    "symptom",
                    "positive",
                    "assessment",
                    "plan",
                    "progress",
                    "progress_plan",
                    "nursing",
                    "course",
                ],
            ),
        ];
        for (kind, parts) in parts {
            for part in parts {
                let bank = format!("{kind}.{part}");
                assert!(GRAMMAR.has(&bank), "no @{bank}");
            }
        }
        // And each scenario of the default config has its own story.
        for scenario in [
            "pneumonia_admission",
            "sepsis_icu",
            "ed_chest_pain",
            "diabetes_followup",
        ] {
            assert!(
                GRAMMAR.bank_names().any(|b| b.starts_with(scenario)),
                "no banks for {scenario}"
            );
        }
    }

    #[test]
    fn slots_choices_lists_and_capitals_expand() {
        let g = Grammar::parse(
            "@greeting\n<^who> said {hello|hi} to <$name>{| twice}.\n@who\nthe nurse\n@items\na\nb\nc\n@list\n<items*3-3>\n",
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let vars = [("name", "Ana")];
        for _ in 0..20 {
            let s = g.text(&mut rng, "greeting", &vars);
            assert!(
                [
                    "The nurse said hello to Ana.",
                    "The nurse said hi to Ana.",
                    "The nurse said hello to Ana twice.",
                    "The nurse said hi to Ana twice."
                ]
                .contains(&s.as_str()),
                "{s}"
            );
            let list = g.text(&mut rng, "list", &vars);
            let mut items: Vec<&str> = list.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            items.retain(|w| *w != "and");
            items.sort_unstable();
            assert_eq!(items, ["a", "b", "c"], "{list}");
        }
        assert_eq!(g.problems(), Vec::<String>::new());
        let broken = Grammar::parse("@a\n<missing> text\n");
        assert_eq!(broken.problems().len(), 1);
    }
}
