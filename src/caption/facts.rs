//! What a caption may say: the facts the language model receives, built from the classifier's
//! evidence so that it cannot mistake alternatives for a scene.
//!
//! The classifier's top-5 are rival names for (usually) one object, not five objects. So a
//! caption describes one subject, with the certainty its probability allows, and a second
//! object only when it was found in a separate region of the picture and confirmed there
//! (see [`Facts::with_second`]). The words of the facts are also the only object words the
//! decoder may use ([`super::words`]).

use serde::Serialize;

use crate::vision::Prediction;
use crate::vision::labels::imagenet;
use crate::vision::rollup::Group;

/// Top-1 at or above this is stated plainly.
pub const SURE: f32 = 0.5;
/// Top-1 at or above this (and below [`SURE`]) is hedged ("probably"); below it the caption
/// names the two best rivals as alternatives.
pub const PROBABLE: f32 = 0.2;

/// How sure the classifier is of the subject, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Certainty {
    Sure,
    Probable,
    Unsure,
}

impl Certainty {
    pub fn of(prob: f32) -> Self {
        if prob >= SURE {
            Certainty::Sure
        } else if prob >= PROBABLE {
            Certainty::Probable
        } else {
            Certainty::Unsure
        }
    }
}

/// One object the caption may name, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subject {
    /// ImageNet class index.
    pub index: usize,
    pub label: String,
    pub prob: f32,
    /// Where it is, in the input image's pixels `[x0, y0, x1, y1]`, when that is known.
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f32; 4]>,
    /// "on the left", "on the right", … when the caption names more than one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// When the label is the noun the classifier's rivals share ("car" for beach wagon, jeep
    /// and racer) rather than the class itself: that noun's WordNet id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synset: Option<String>,
}

impl Subject {
    pub fn from_prediction(p: &Prediction) -> Self {
        Self {
            index: p.index,
            label: p.label.clone(),
            prob: p.prob,
            bbox: None,
            position: None,
            synset: None,
        }
    }

    /// What kind of thing it is, from its WordNet definition's first clause ("a circular
    /// domed dwelling"): true knowledge about the class, for the model to use instead of
    /// inventing. `None` when the class has no usable definition.
    pub fn definition(&self) -> Option<String> {
        let class = imagenet().get(self.index)?;
        if class.name() != self.label {
            return None;
        }
        first_clause(class.definition)
    }
}

/// The head of a WordNet definition, short enough for a caption and naming no other object:
/// its first clause cut before any preposition, relative clause or conjunction ("a circular
/// domed dwelling that is portable…" → "circular domed dwelling"; "large powerful breed
/// developed by crossing the bulldog and the mastiff" → "large powerful breed"), without a
/// leading article. Definitions mention other things ("the bulldog"), which a caption must
/// not borrow as if they were in the photo.
pub fn first_clause(definition: &str) -> Option<String> {
    const CUTS: [&str; 22] = [
        " that ",
        " which ",
        " who ",
        " used ",
        " usually ",
        " especially ",
        " of ",
        " for ",
        " with ",
        " in ",
        " from ",
        " by ",
        " developed ",
        " having ",
        " and ",
        " or ",
        ",",
        " on ",
        " to ",
        " as ",
        " resembling ",
        " found ",
    ];
    let clause = definition.split(';').next()?.trim();
    let clause = CUTS
        .iter()
        .filter_map(|cut| clause.find(cut))
        .min()
        .map_or(clause, |at| &clause[..at]);
    let words: Vec<&str> = clause.split_whitespace().collect();
    let words = match words.first() {
        Some(&("a" | "an" | "the" | "any")) => &words[1..],
        _ => &words[..],
    };
    (!words.is_empty()
        && words.len() <= 6
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || c == '-')))
    .then(|| words.join(" "))
}

/// Everything a caption may be about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facts {
    /// The main subject first; a second, confirmed object after it.
    pub objects: Vec<Subject>,
    /// How sure the classifier is of the main subject.
    pub certainty: Certainty,
    /// When unsure: the rival names for the same subject (the main subject's label first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
    /// When the subject is a noun the rivals share: the top class, if it is at least
    /// probable ("a container, probably a beaker").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likely: Option<Subject>,
}

impl Facts {
    /// The facts of a classification alone (`top`, best first): one subject, hedged by its
    /// probability, with its rivals as alternatives when it is unsure.
    pub fn from_top(top: &[Prediction]) -> Option<Self> {
        let best = top.first()?;
        let certainty = Certainty::of(best.prob);
        let alternatives = match certainty {
            Certainty::Unsure => top.iter().take(2).map(|p| p.label.clone()).collect(),
            _ => Vec::new(),
        };
        Some(Self {
            objects: vec![Subject::from_prediction(best)],
            certainty,
            alternatives,
            likely: None,
        })
    }

    /// The facts of a classification with its rolled-up rivals (`groups`, see
    /// [`crate::vision::rollup`]): when the top class is not sure but the rivals around it
    /// share a noun that is ("beach wagon 20%, jeep 12%, racer 8%, …" → "motor vehicle 62%"),
    /// the subject is that noun, stated: a true word instead of a doubtful one.
    pub fn from_classification(top: &[Prediction], groups: &[Group]) -> Option<Self> {
        let facts = Self::from_top(top)?;
        if facts.certainty == Certainty::Sure {
            return Some(facts);
        }
        let best = &top[0];
        let Some(group) = groups
            .iter()
            .find(|g| g.prob >= SURE && g.members.iter().any(|m| m.index == best.index))
        else {
            return Some(facts);
        };
        Some(Self {
            objects: vec![Subject {
                index: best.index,
                label: group.noun.clone(),
                prob: group.prob,
                bbox: None,
                position: None,
                synset: Some(group.synset.clone()),
            }],
            certainty: Certainty::Sure,
            alternatives: Vec::new(),
            likely: (best.prob >= PROBABLE).then(|| Subject::from_prediction(best)),
        })
    }

    /// One object, stated without hedging.
    pub fn sure(subject: Subject) -> Self {
        Self {
            objects: vec![subject],
            certainty: Certainty::Sure,
            alternatives: Vec::new(),
            likely: None,
        }
    }

    /// Adds a second object found in its own region and confirmed there; both get position
    /// words from their boxes (the main subject's is kept if it has none).
    pub fn with_second(mut self, mut second: Subject) -> Self {
        if let (Some(a), Some(b)) = (self.objects[0].bbox, second.bbox) {
            let (pa, pb) = relative_positions(a, b);
            self.objects[0].position = Some(pa.into());
            second.position = Some(pb.into());
        }
        self.objects.truncate(1);
        self.objects.push(second);
        self.likely = None;
        self
    }

    pub fn main(&self) -> &Subject {
        &self.objects[0]
    }
}

/// Position words for two boxes relative to each other: left/right when they are apart
/// horizontally more than vertically, else top/bottom ("in front" needs depth we do not have).
fn relative_positions(a: [f32; 4], b: [f32; 4]) -> (&'static str, &'static str) {
    let center = |r: [f32; 4]| ((r[0] + r[2]) / 2.0, (r[1] + r[3]) / 2.0);
    let ((ax, ay), (bx, by)) = (center(a), center(b));
    if (ax - bx).abs() >= (ay - by).abs() {
        if ax <= bx {
            ("on the left", "on the right")
        } else {
            ("on the right", "on the left")
        }
    } else if ay <= by {
        ("at the top", "at the bottom")
    } else {
        ("at the bottom", "at the top")
    }
}

/// "a" or "an" before `word` (by its first letter; English's exceptions are rare in labels).
pub fn article(word: &str) -> &'static str {
    if word.starts_with(|c: char| "aeiouAEIOU".contains(c)) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(index: usize, prob: f32) -> Prediction {
        Prediction {
            index,
            label: imagenet()[index].name().into(),
            prob,
        }
    }

    #[test]
    fn certainty_follows_the_top_probability() {
        assert_eq!(Certainty::of(0.9), Certainty::Sure);
        assert_eq!(Certainty::of(0.5), Certainty::Sure);
        assert_eq!(Certainty::of(0.3), Certainty::Probable);
        assert_eq!(Certainty::of(0.1), Certainty::Unsure);
    }

    #[test]
    fn rivals_are_alternatives_for_one_subject_never_a_second_object() {
        let sure = Facts::from_top(&[pred(243, 0.67), pred(242, 0.29)]).unwrap();
        assert_eq!(sure.objects.len(), 1);
        assert!(sure.alternatives.is_empty());
        let unsure = Facts::from_top(&[pred(243, 0.15), pred(242, 0.12)]).unwrap();
        assert_eq!(unsure.objects.len(), 1);
        assert_eq!(unsure.alternatives, ["bull mastiff", "boxer"]);
    }

    #[test]
    fn unsure_rivals_that_share_a_sure_noun_are_described_by_it() {
        let top = [pred(436, 0.2), pred(609, 0.12)]; // beach wagon, jeep
        let group = Group {
            noun: "car".into(),
            synset: "n02958343".into(),
            prob: 0.62,
            members: top.to_vec(),
        };
        let facts = Facts::from_classification(&top, &[group]).unwrap();
        assert_eq!(facts.certainty, Certainty::Sure);
        assert_eq!(facts.main().label, "car");
        assert!(facts.alternatives.is_empty());
        let alone = Facts::from_classification(&top, &[]).unwrap();
        assert_eq!(alone.certainty, Certainty::Probable);
    }

    #[test]
    fn definitions_give_their_first_short_clause() {
        assert_eq!(
            first_clause(
                "a circular domed dwelling that is portable and self-supporting; originally used by nomadic people"
            )
            .as_deref(),
            Some("circular domed dwelling")
        );
        assert_eq!(
            first_clause("large powerful breed developed by crossing the bulldog and the mastiff")
                .as_deref(),
            Some("large powerful breed")
        );
        assert_eq!(first_clause("(1990s) a thing"), None);
    }

    #[test]
    fn a_second_object_gets_position_words_from_the_boxes() {
        let facts = Facts::from_top(&[pred(8, 0.9)]).unwrap();
        let mut main = facts.objects[0].clone();
        main.bbox = Some([0.0, 0.0, 100.0, 100.0]);
        let facts = Facts {
            objects: vec![main],
            ..facts
        };
        let mut second = Subject::from_prediction(&pred(950, 0.8));
        second.bbox = Some([150.0, 10.0, 250.0, 90.0]);
        let facts = facts.with_second(second);
        assert_eq!(facts.objects[0].position.as_deref(), Some("on the left"));
        assert_eq!(facts.objects[1].position.as_deref(), Some("on the right"));
    }
}
