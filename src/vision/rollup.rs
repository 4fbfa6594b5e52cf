//! Rivals rolled up: when the top classes are alternative names for one thing ("tiger cat 39%,
//! Egyptian cat 36%, tabby 16%"), the noun they share is what the classifier is sure of
//! ("cat 91.5%"). It gives a person, and a caption, a confident and true word.

use serde::{Deserialize, Serialize};

use super::wordnet::{WordNet, wordnet};
use super::{Prediction, top_k};

/// How many of the most probable classes are looked at.
pub const TOP: usize = 5;

/// A shared noun is close when it is at most this many hypernym steps above every member:
/// tiger cat → domestic cat → cat, bull mastiff → mastiff → working dog → dog.
pub const MAX_LEVELS: u8 = 3;

/// A class under 1% is no rival worth naming.
pub const MIN_PROB: f32 = 0.01;

/// Nouns too general to tell a person anything ("whole 95%"), even when close to the members;
/// WordNet offsets.
const TOO_GENERAL: [u32; 21] = [
    1740,    // entity
    1930,    // physical entity
    2137,    // abstraction
    2452,    // thing
    2684,    // object
    3553,    // whole
    4258,    // living thing
    4475,    // organism
    15388,   // animal
    19128,   // natural object
    20827,   // matter
    21939,   // artifact
    1317541, // domestic animal: a role, not a kind one could see
    1466257, // chordate
    1471682, // vertebrate
    1905661, // invertebrate
    3076708, // commodity
    3093574, // consumer goods
    3122748, // covering
    3183080, // device
    3575240, // instrumentality
];

/// Top classes that share a close noun.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The shared noun's usual name ("cat").
    pub noun: String,
    /// Its WordNet id (`n02121620`).
    pub synset: String,
    /// The classifier's probability of the noun: the sum over every class under it, not only
    /// the members shown.
    pub prob: f32,
    /// The top classes under it, in their order.
    pub members: Vec<Prediction>,
}

/// Groups the [`TOP`] most probable classes (those of at least [`MIN_PROB`]) under close
/// shared nouns.
///
/// Each class not yet grouped, best first, looks at its ancestors within [`MAX_LEVELS`] that
/// are not [too general](TOO_GENERAL) and takes the one that gathers the most probability
/// among the classes not yet grouped (it must gather at least two). When several gather the
/// same classes, the noun with the fewest words wins ("cat" over "domestic cat", "dog" over
/// "working dog"), then the nearest. Classes that share nothing close stay out of the groups.
pub fn roll_up(probs: &[f32]) -> Vec<Group> {
    let top: Vec<Prediction> = top_k(probs, TOP)
        .into_iter()
        .filter(|p| p.prob >= MIN_PROB)
        .collect();
    let wn = wordnet();
    let mut grouped = vec![false; top.len()];
    let mut groups = Vec::new();
    for first in 0..top.len() {
        if grouped[first] {
            continue;
        }
        let mut best: Option<Candidate> = None;
        for &(row, levels) in wn.ancestors(top[first].index) {
            if levels > MAX_LEVELS || TOO_GENERAL.contains(&wn.synset(row).offset) {
                continue;
            }
            let members: Vec<usize> = (first..top.len())
                .filter(|&j| !grouped[j] && is_close(wn, top[j].index, row))
                .collect();
            if members.len() < 2 {
                continue;
            }
            let candidate = Candidate {
                row,
                mass: members.iter().map(|&j| top[j].prob).sum(),
                words: wn.synset(row).name().split(' ').count(),
                levels,
                members,
            };
            if best.as_ref().is_none_or(|b| candidate.beats(b)) {
                best = Some(candidate);
            }
        }
        if let Some(best) = best {
            let synset = wn.synset(best.row);
            for &j in &best.members {
                grouped[j] = true;
            }
            groups.push(Group {
                noun: synset.name().to_string(),
                synset: synset.id(),
                prob: wn
                    .classes_under(best.row)
                    .iter()
                    .filter_map(|&c| probs.get(c))
                    .sum::<f32>()
                    .min(1.0),
                members: best.members.iter().map(|&j| top[j].clone()).collect(),
            });
        }
    }
    groups
}

struct Candidate {
    row: usize,
    members: Vec<usize>,
    mass: f32,
    words: usize,
    levels: u8,
}

impl Candidate {
    fn beats(&self, other: &Candidate) -> bool {
        if self.members != other.members {
            return self.mass > other.mass;
        }
        (self.words, self.levels) < (other.words, other.levels)
    }
}

fn is_close(wn: &WordNet, class: usize, row: usize) -> bool {
    wn.ancestors(class)
        .iter()
        .any(|&(r, levels)| r == row && levels <= MAX_LEVELS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::labels::imagenet;

    fn photo(classes: &[(&str, f32)]) -> Vec<f32> {
        let mut probs = vec![0.0; 1000];
        for (name, p) in classes {
            let index = imagenet().iter().position(|c| c.name() == *name).unwrap();
            probs[index] = *p;
        }
        probs
    }

    fn members(group: &Group) -> Vec<&str> {
        group.members.iter().map(|m| m.label.as_str()).collect()
    }

    #[test]
    fn rival_cats_roll_up_into_cat() {
        let probs = photo(&[
            ("tiger cat", 0.39),
            ("Egyptian cat", 0.36),
            ("tabby", 0.16),
            ("lion", 0.005),
            ("strawberry", 0.03),
        ]);
        let groups = roll_up(&probs);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].noun, "cat");
        assert_eq!(members(&groups[0]), ["tiger cat", "Egyptian cat", "tabby"]);
        assert!((groups[0].prob - 0.91).abs() < 1e-5, "{}", groups[0].prob);
    }

    #[test]
    fn a_mastiff_and_a_boxer_are_both_dogs() {
        let probs = photo(&[("bull mastiff", 0.70), ("boxer", 0.29), ("tabby", 0.01)]);
        let groups = roll_up(&probs);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].noun, "dog");
        assert_eq!(members(&groups[0]), ["bull mastiff", "boxer"]);
    }

    #[test]
    fn classes_that_share_only_a_distant_or_general_noun_stay_apart() {
        // A tabby and a bull mastiff meet at "carnivore", four steps up; a strawberry and a
        // thatched roof only at "whole".
        let probs = photo(&[
            ("tabby", 0.4),
            ("bull mastiff", 0.3),
            ("strawberry", 0.2),
            ("thatch", 0.1),
        ]);
        assert_eq!(roll_up(&probs), []);
    }

    #[test]
    fn each_class_joins_at_most_one_group() {
        let probs = photo(&[
            ("tiger cat", 0.3),
            ("bull mastiff", 0.25),
            ("tabby", 0.2),
            ("boxer", 0.15),
            ("Egyptian cat", 0.1),
        ]);
        let groups = roll_up(&probs);
        let nouns: Vec<&str> = groups.iter().map(|g| g.noun.as_str()).collect();
        assert_eq!(nouns, ["cat", "dog"]);
        assert_eq!(members(&groups[0]), ["tiger cat", "tabby", "Egyptian cat"]);
        assert_eq!(members(&groups[1]), ["bull mastiff", "boxer"]);
    }
}
