//! The ImageNet-1k classes' place in WordNet 3.0: each class id (`n02123159`) is a WordNet noun
//! offset, so the nouns above a class (tiger cat → domestic cat → cat → feline → …) say which
//! words are true of it. `data/imagenet-hypernyms.tsv` holds every class's ancestors, derived
//! from WordNet's `data.noun` by [`build_table`] (`glimpse models wordnet`); the WordNet 3.0
//! licence is in `data/WORDNET-LICENSE`.
//!
//! A typed label that is a lemma of one of these nouns gets an exact probability: the sum of
//! the classifier's probabilities over the classes under it ([`WordNet::find`]).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const TABLE: &str = include_str!("../../data/imagenet-hypernyms.tsv");

/// A WordNet noun synset that is an ImageNet class or one of their ancestors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synset {
    /// WordNet 3.0 noun offset: `02121620` is the synset written `n02121620`.
    pub offset: u32,
    /// Its lemmas as a person writes them ("domestic cat", "house cat", …), the first being
    /// WordNet's usual name.
    pub lemmas: Vec<String>,
}

impl Synset {
    pub fn id(&self) -> String {
        format!("n{:08}", self.offset)
    }

    pub fn name(&self) -> &str {
        &self.lemmas[0]
    }
}

/// The ImageNet classes a typed label names, with the synsets it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noun {
    /// Rows of [`WordNet::synset`] whose lemmas include the label.
    pub synsets: Vec<usize>,
    /// Class indices under any of them, ascending (never empty).
    pub classes: Vec<usize>,
}

impl Noun {
    /// The classifier's probability that the picture shows one of these classes.
    pub fn probability(&self, probs: &[f32]) -> f32 {
        self.classes
            .iter()
            .filter_map(|&c| probs.get(c))
            .sum::<f32>()
            .min(1.0)
    }
}

/// The classes' hypernym graph, read from the committed table.
pub struct WordNet {
    synsets: Vec<Synset>,
    /// Class index → its own synset row.
    class_synsets: Vec<usize>,
    /// Class index → (synset row, levels up), nearest first.
    ancestors: Vec<Vec<(usize, u8)>>,
    /// Synset row → the classes under it (a class is under itself), ascending.
    under: Vec<Vec<usize>>,
    by_lemma: HashMap<String, Vec<usize>>,
    /// Irregular plurals (WordNet's `noun.exc`) of the lemmas in the table.
    plurals: HashMap<String, String>,
}

/// The table shipped in `data/`, parsed once.
pub fn wordnet() -> &'static WordNet {
    static WORDNET: OnceLock<WordNet> = OnceLock::new();
    WORDNET.get_or_init(|| WordNet::parse(TABLE).expect("data/imagenet-hypernyms.tsv is valid"))
}

impl WordNet {
    pub fn parse(table: &str) -> Result<Self, String> {
        let mut synsets = Vec::new();
        let mut rows = HashMap::new();
        let mut class_lines = Vec::new();
        let mut plurals = HashMap::new();
        for line in table
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["s", offset, lemmas] => {
                    let offset = parse_offset(offset)?;
                    rows.insert(offset, synsets.len());
                    synsets.push(Synset {
                        offset,
                        lemmas: lemmas.split(' ').map(readable).collect(),
                    });
                }
                ["c", id, levels] => class_lines.push((*id, *levels)),
                ["x", plural, lemma] => {
                    plurals.insert(readable(plural), readable(lemma));
                }
                _ => return Err(format!("unreadable line: {line:?}")),
            }
        }
        let row = |offset: &str| -> Result<usize, String> {
            let offset = parse_offset(offset.trim_start_matches('n'))?;
            rows.get(&offset)
                .copied()
                .ok_or(format!("synset {offset:08} is not in the table"))
        };
        let mut class_synsets = Vec::new();
        let mut ancestors = Vec::new();
        for (id, levels) in class_lines {
            class_synsets.push(row(id)?);
            let mut list = Vec::new();
            for (level, synsets) in levels.split(' ').filter(|l| !l.is_empty()).enumerate() {
                for offset in synsets.split(',') {
                    list.push((row(offset)?, u8::try_from(level + 1).unwrap_or(u8::MAX)));
                }
            }
            ancestors.push(list);
        }
        let mut under = vec![Vec::new(); synsets.len()];
        for (class, list) in ancestors.iter().enumerate() {
            under[class_synsets[class]].push(class);
            for &(row, _) in list {
                under[row].push(class);
            }
        }
        let mut by_lemma: HashMap<String, Vec<usize>> = HashMap::new();
        for (row, synset) in synsets.iter().enumerate() {
            for lemma in &synset.lemmas {
                let rows = by_lemma.entry(fold(lemma)).or_default();
                if !rows.contains(&row) {
                    rows.push(row);
                }
            }
        }
        Ok(Self {
            synsets,
            class_synsets,
            ancestors,
            under,
            by_lemma,
            plurals,
        })
    }

    pub fn classes(&self) -> usize {
        self.class_synsets.len()
    }

    pub fn synset(&self, row: usize) -> &Synset {
        &self.synsets[row]
    }

    pub fn synset_count(&self) -> usize {
        self.synsets.len()
    }

    /// The synset row of a class.
    pub fn class_synset(&self, class: usize) -> usize {
        self.class_synsets[class]
    }

    /// A class's ancestors as (synset row, levels up), nearest first; a synset reached along
    /// several hypernym paths is listed once, at its shortest distance.
    pub fn ancestors(&self, class: usize) -> &[(usize, u8)] {
        &self.ancestors[class]
    }

    /// Every lemma of every ancestor of a class, nearest first ("mastiff", "working dog",
    /// "dog", "domestic dog", …): the words that are true of a picture of that class.
    pub fn ancestor_lemmas(&self, class: usize) -> Vec<&str> {
        self.ancestors[class]
            .iter()
            .flat_map(|&(row, _)| self.synsets[row].lemmas.iter().map(String::as_str))
            .collect()
    }

    /// The classes under a synset (itself included when it is a class), ascending.
    pub fn classes_under(&self, row: usize) -> &[usize] {
        &self.under[row]
    }

    /// The classes a typed label names, if it is a lemma of a noun in the table.
    ///
    /// The rule: case, underscores and repeated spaces do not matter; a word WordNet does not
    /// list is tried as a plural (its `noun.exc` irregulars such as "mice", then "-ies" → "-y",
    /// "-es", "-s", "-ves" → "-f"/"-fe", "-men" → "-man"); and a lemma shared by several
    /// synsets names the classes under any of them ("cat" is both the true cats and the big
    /// cats, as WordNet has it). Nouns with no ImageNet class under them are not in the table,
    /// so they are unknown here too: a probability of 0 from a closed set of 1000 classes would
    /// say "not in the picture" when the classifier simply cannot see such things.
    pub fn find(&self, label: &str) -> Option<Noun> {
        let folded = fold(label);
        let synsets = lemma_candidates(&folded, &self.plurals)
            .into_iter()
            .find_map(|candidate| self.by_lemma.get(&candidate))?;
        let mut classes: Vec<usize> = synsets
            .iter()
            .flat_map(|&row| self.under[row].iter().copied())
            .collect::<HashSet<usize>>()
            .into_iter()
            .collect();
        classes.sort_unstable();
        Some(Noun {
            synsets: synsets.clone(),
            classes,
        })
    }
}

fn parse_offset(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a WordNet offset"))
}

/// WordNet joins the words of a lemma with underscores.
fn readable(lemma: &str) -> String {
    lemma.replace('_', " ")
}

/// The form labels and lemmas are compared in.
fn fold(text: &str) -> String {
    text.replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The label itself, then the singulars it may be the plural of, most likely first.
fn lemma_candidates(folded: &str, plurals: &HashMap<String, String>) -> Vec<String> {
    let mut candidates = vec![folded.to_string()];
    candidates.extend(plurals.get(folded).cloned());
    let rules: [(&str, &[&str]); 5] = [
        ("ies", &["y"]),
        ("es", &[""]),
        ("s", &[""]),
        ("ves", &["f", "fe"]),
        ("men", &["man"]),
    ];
    for (suffix, replacements) in rules {
        if let Some(stem) = folded.strip_suffix(suffix)
            && stem.chars().count() >= 2
            && !(suffix == "s" && stem.ends_with('s'))
        {
            candidates.extend(replacements.iter().map(|r| format!("{stem}{r}")));
        }
    }
    candidates
}

/// WordNet's hypernym pointers: `@` (is a kind of) and `@i` (is an instance of).
fn is_hypernym(symbol: &str) -> bool {
    symbol == "@" || symbol == "@i"
}

/// One synset of `data.noun`: its lemmas and hypernyms.
struct NounEntry {
    lemmas: Vec<String>,
    hypernyms: Vec<u32>,
}

/// Reads the synset lines of WordNet's `data.noun` (the licence header lines start with
/// spaces): `offset lex_filenum ss_type w_cnt (word lex_id)… p_cnt (symbol offset pos
/// source/target)… | gloss`, with `w_cnt` in hexadecimal (wndb(5WN)).
fn parse_data_noun(data_noun: &str) -> Result<HashMap<u32, NounEntry>, String> {
    let mut entries = HashMap::new();
    for line in data_noun
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
    {
        let bad = || {
            format!(
                "unreadable data.noun line: {:?}",
                &line[..line.len().min(60)]
            )
        };
        let fields: Vec<&str> = line
            .split(" | ")
            .next()
            .unwrap_or(line)
            .split(' ')
            .collect();
        let offset = parse_offset(fields.first().ok_or_else(bad)?)?;
        let words = usize::from_str_radix(fields.get(3).ok_or_else(bad)?, 16).map_err(|_| bad())?;
        let lemmas: Vec<String> = (0..words)
            .map(|i| fields.get(4 + 2 * i).map(|w| w.to_string()).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        let at = 4 + 2 * words;
        let pointers: usize = fields.get(at).ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let mut hypernyms = Vec::new();
        for p in 0..pointers {
            let pointer = fields.get(at + 1 + 4 * p..at + 5 + 4 * p).ok_or_else(bad)?;
            if is_hypernym(pointer[0]) && pointer[2] == "n" {
                hypernyms.push(parse_offset(pointer[1])?);
            }
        }
        entries.insert(offset, NounEntry { lemmas, hypernyms });
    }
    Ok(entries)
}

/// Writes `data/imagenet-hypernyms.tsv` from WordNet 3.0's `data.noun` and `noun.exc` and the
/// class ids in model order (`n02123159`, …). Each class's ancestors are found breadth-first
/// along every hypernym path up to the root, so a level holds the synsets first reached at that
/// distance; only the synsets some class reaches are kept, and only the irregular plurals of
/// their lemmas.
pub fn build_table<'a>(
    data_noun: &str,
    noun_exc: &str,
    class_ids: impl IntoIterator<Item = &'a str>,
) -> Result<String, String> {
    let entries = parse_data_noun(data_noun)?;
    let entry = |offset: u32| {
        entries
            .get(&offset)
            .ok_or(format!("synset {offset:08} is not in data.noun"))
    };
    let mut kept: Vec<u32> = Vec::new();
    let mut seen: HashSet<u32> = HashSet::new();
    let mut classes = String::new();
    let mut count = 0;
    for id in class_ids {
        count += 1;
        let offset = parse_offset(id.trim_start_matches('n'))?;
        entry(offset)?;
        let mut reached = HashSet::from([offset]);
        let mut level = vec![offset];
        let mut levels: Vec<String> = Vec::new();
        if seen.insert(offset) {
            kept.push(offset);
        }
        while !level.is_empty() {
            let mut next = Vec::new();
            for &synset in &level {
                for &parent in &entry(synset)?.hypernyms {
                    if reached.insert(parent) {
                        next.push(parent);
                    }
                }
            }
            if !next.is_empty() {
                for &synset in &next {
                    entry(synset)?;
                    if seen.insert(synset) {
                        kept.push(synset);
                    }
                }
                levels.push(
                    next.iter()
                        .map(|o| format!("{o:08}"))
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            level = next;
        }
        classes.push_str(&format!("c\t{id}\t{}\n", levels.join(" ")));
    }
    if count == 0 {
        return Err("no class ids given".into());
    }
    let lemmas: HashSet<String> = kept
        .iter()
        .flat_map(|&o| entries[&o].lemmas.iter().map(|l| fold(l)))
        .collect();

    let mut out = String::from(
        "# The ImageNet-1k classes' ancestors in WordNet 3.0 (nouns), written by `glimpse models wordnet`\n\
         # from WordNet's data.noun and noun.exc. WordNet 3.0 Copyright 2006 by Princeton University;\n\
         # licence in data/WORDNET-LICENSE.\n\
         # s <TAB> synset offset <TAB> lemmas (WordNet's spelling, space-separated): the classes and their ancestors\n\
         # c <TAB> class id <TAB> ancestors nearest first, one level per space, a level's synsets comma-separated\n\
         # x <TAB> irregular plural <TAB> lemma (noun.exc)\n",
    );
    for &offset in &kept {
        out.push_str(&format!(
            "s\t{offset:08}\t{}\n",
            entries[&offset].lemmas.join(" ")
        ));
    }
    out.push_str(&classes);
    let mut irregular: Vec<(&str, &str)> = noun_exc
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(_, lemma)| lemmas.contains(&fold(lemma)))
        .collect();
    irregular.sort_unstable();
    for (plural, lemma) in irregular {
        out.push_str(&format!("x\t{plural}\t{lemma}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::labels::imagenet;

    fn class_named(name: &str) -> usize {
        imagenet().iter().position(|c| c.name() == name).unwrap()
    }

    fn names(noun: &Noun) -> Vec<&'static str> {
        noun.classes.iter().map(|&c| imagenet()[c].name()).collect()
    }

    #[test]
    fn the_table_lists_the_1000_classes_in_model_order() {
        let wn = wordnet();
        assert_eq!(wn.classes(), 1000);
        for (i, class) in imagenet().iter().enumerate() {
            assert_eq!(wn.synset(wn.class_synset(i)).id(), class.synset);
        }
    }

    #[test]
    fn ancestors_run_from_the_nearest_to_the_root() {
        let wn = wordnet();
        let tiger_cat = class_named("tiger cat");
        let lemmas = wn.ancestor_lemmas(tiger_cat);
        assert_eq!(&lemmas[..2], ["domestic cat", "house cat"]);
        let position = |word: &str| lemmas.iter().position(|l| *l == word).unwrap();
        assert!(position("cat") < position("feline"));
        assert!(position("feline") < position("animal"));
        assert_eq!(lemmas.last(), Some(&"entity"));
        let levels: Vec<u8> = wn.ancestors(tiger_cat).iter().map(|a| a.1).collect();
        assert!(levels.windows(2).all(|w| w[0] <= w[1]), "{levels:?}");
    }

    #[test]
    fn a_label_is_found_whatever_its_case_spacing_or_underscores() {
        let wn = wordnet();
        let dog = wn.find("dog").unwrap();
        assert_eq!(wn.find(" DOG ").unwrap(), dog);
        assert!(dog.classes.contains(&class_named("bull mastiff")));
        assert!(!dog.classes.contains(&class_named("tiger cat")));
        let instrument = wn.find("Musical_Instrument").unwrap();
        assert_eq!(wn.find("musical   instrument").unwrap(), instrument);
        assert!(instrument.classes.contains(&class_named("drum")));
    }

    #[test]
    fn plurals_find_their_singular() {
        let wn = wordnet();
        assert_eq!(wn.find("dogs"), wn.find("dog"));
        assert_eq!(wn.find("boxes"), wn.find("box"));
        assert_eq!(wn.find("butterflies"), wn.find("butterfly"));
        assert_eq!(
            wn.find("Musical Instruments"),
            wn.find("musical instrument")
        );
        assert_eq!(wn.find("mice"), wn.find("mouse"));
        assert!(wn.find("box").is_some() && wn.find("mouse").is_some());
    }

    #[test]
    fn words_wordnet_does_not_know_here_are_not_found() {
        let wn = wordnet();
        for label in ["glimpsewidget", "🐶", "猫", "a kind of dog", "sky", "s"] {
            assert_eq!(wn.find(label), None, "{label}");
        }
    }

    #[test]
    fn a_lemma_of_several_synsets_names_the_classes_under_any_of_them() {
        let cat = wordnet().find("cat").unwrap();
        let names = names(&cat);
        assert!(
            names.contains(&"tabby") && names.contains(&"tiger"),
            "{names:?}"
        );
    }

    #[test]
    fn a_label_probability_sums_the_classes_under_it() {
        let wn = wordnet();
        let mut probs = vec![0.0; 1000];
        probs[class_named("fox squirrel")] = 0.91;
        probs[class_named("tabby")] = 0.05;
        probs[class_named("strawberry")] = 0.04;
        let animal = wn.find("animal").unwrap().probability(&probs);
        assert!((animal - 0.96).abs() < 1e-6, "{animal}");
        assert_eq!(wn.find("vehicle").unwrap().probability(&probs), 0.0);
    }

    #[test]
    fn the_generator_follows_kind_and_instance_pointers_level_by_level() {
        let data_noun = "  1 licence header\n\
            00000001 03 n 01 entity 0 000 | root\n\
            00000002 03 n 01 thing 0 001 @ 00000001 n 0000 | a thing\n\
            00000003 03 n 02 pet 0 domestic_animal 0 001 @ 00000001 n 0000 | kept\n\
            00000004 05 n 01 cat 0 003 @ 00000002 n 0000 @ 00000003 n 0000 ~ 00000005 n 0000 | a cat\n\
            00000005 05 n 01 Tom 0 001 @i 00000004 n 0000 | a cat named Tom\n";
        let table = build_table(
            data_noun,
            "cattes cat\nmice mouse\n",
            ["n00000005", "n00000004"],
        )
        .unwrap();
        assert!(table.contains("c\tn00000005\t00000004 00000002,00000003 00000001\n"));
        assert!(table.contains("c\tn00000004\t00000002,00000003 00000001\n"));
        assert!(table.contains("s\t00000003\tpet domestic_animal\n"));
        assert!(table.contains("x\tcattes\tcat\n") && !table.contains("mice"));
        let wn = WordNet::parse(&table).unwrap();
        assert_eq!(
            wn.ancestor_lemmas(0),
            ["cat", "thing", "pet", "domestic animal", "entity"]
        );
        assert_eq!(wn.find("domestic animals").unwrap().classes, [0, 1]);
        assert_eq!(wn.find("cattes").unwrap().classes, [0, 1]);
    }
}
