//! Which words name objects, and which of them a caption may use.
//!
//! The object vocabulary is every head noun of the 1000 ImageNet classes' lemmas ("sports
//! car" → "car"), every one-word lemma, and a list of common object and scene nouns that a
//! small language model likes to add ("man", "table", "beach", "sky"). A caption may use an
//! object word only when the facts hold it: the subjects' own lemmas, what WordNet says they
//! are kinds of ("dog", "animal" for a bull mastiff), and the words of their definitions'
//! heads. Any other object word, and any number, is refused while decoding
//! ([`super::captioner`] backtracks and bans the word's first token there).

use std::collections::HashSet;
use std::sync::OnceLock;

use super::facts::{Facts, first_clause};
use crate::vision::labels::imagenet;
use crate::vision::wordnet::wordnet;

/// Object and scene nouns outside ImageNet's heads that captions tend to invent.
const COMMON_OBJECTS: &[&str] = &[
    "person",
    "people",
    "man",
    "men",
    "woman",
    "women",
    "child",
    "children",
    "kid",
    "boy",
    "girl",
    "baby",
    "player",
    "owner",
    "rider",
    "driver",
    "family",
    "crowd",
    "hand",
    "animal",
    "pet",
    "puppy",
    "kitten",
    "dog",
    "cat",
    "bird",
    "fish",
    "insect",
    "bug",
    "horse",
    "cow",
    "bull",
    "sheep",
    "pig",
    "chicken",
    "duck",
    "eagle",
    "mouse",
    "rabbit",
    "deer",
    "bear",
    "lion",
    "tiger",
    "monkey",
    "snake",
    "frog",
    "fly",
    "bee",
    "butterfly",
    "beetle",
    "spider",
    "flower",
    "tree",
    "plant",
    "leaf",
    "leaves",
    "grass",
    "bush",
    "forest",
    "garden",
    "field",
    "park",
    "yard",
    "farm",
    "sky",
    "cloud",
    "sun",
    "moon",
    "water",
    "sea",
    "ocean",
    "lake",
    "river",
    "pond",
    "beach",
    "sand",
    "snow",
    "ice",
    "rock",
    "stone",
    "mountain",
    "hill",
    "road",
    "street",
    "sidewalk",
    "city",
    "town",
    "building",
    "house",
    "home",
    "room",
    "kitchen",
    "wall",
    "floor",
    "roof",
    "window",
    "door",
    "fence",
    "bridge",
    "car",
    "truck",
    "bus",
    "train",
    "bike",
    "bicycle",
    "motorcycle",
    "boat",
    "ship",
    "plane",
    "airplane",
    "vehicle",
    "wheel",
    "table",
    "chair",
    "bed",
    "sofa",
    "couch",
    "desk",
    "shelf",
    "box",
    "bag",
    "basket",
    "bottle",
    "glass",
    "cup",
    "mug",
    "bowl",
    "plate",
    "dish",
    "pot",
    "pan",
    "spoon",
    "fork",
    "knife",
    "food",
    "fruit",
    "vegetable",
    "bread",
    "cake",
    "ball",
    "toy",
    "book",
    "paper",
    "phone",
    "computer",
    "screen",
    "lamp",
    "light",
    "clock",
    "hat",
    "shirt",
    "shoe",
    "dress",
    "coat",
    "flag",
    "sign",
    "rope",
    "chain",
    "pole",
    "stick",
    "blanket",
    "pillow",
    "towel",
    "bucket",
    "barrel",
    "tent",
    "umbrella",
    "camera",
    "gun",
    "weapon",
    "tool",
    "machine",
    "robot",
    "statue",
    "painting",
    "picture",
    "photo",
    "mirror",
    "candle",
    "nest",
    "egg",
    "shell",
    "bone",
    "meat",
    "cheese",
    "wine",
    "beer",
    "coffee",
    "tea",
    "milk",
    "juice",
    "drink",
    "soup",
    "salad",
    "pizza",
    "sandwich",
    "burger",
    "apple",
    "banana",
    "orange",
    "lemon",
    "strawberry",
    "grape",
    "cherry",
    "carrot",
    "potato",
    "tomato",
];

/// Every word that names an object (lowercase, singular as written in the sources).
pub fn object_words() -> &'static HashSet<String> {
    static WORDS: OnceLock<HashSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: HashSet<String> = COMMON_OBJECTS.iter().map(|w| w.to_string()).collect();
        let mut add_head = |lemma: &str| {
            if let Some(head) = head_word(lemma) {
                words.insert(head);
            }
        };
        for class in imagenet() {
            class.lemmas.split(',').for_each(&mut add_head);
        }
        // What the classes are kinds of ("parrot", "wading bird", "container").
        let wn = wordnet();
        for row in 0..wn.synset_count() {
            wn.synset(row).lemmas.iter().for_each(|l| add_head(l));
        }
        words
    })
}

/// The head of a lemma: its last word ("great white shark" → "shark"), the words before it
/// usually describing ("great", "white"), or the word before "of" ("bird of prey" → "bird").
fn head_word(lemma: &str) -> Option<String> {
    let lemma = lemma.trim().to_lowercase();
    let noun = lemma.split(" of ").next().unwrap_or(&lemma);
    let head = noun.split([' ', '-', '_']).next_back()?;
    (head.chars().all(char::is_alphabetic) && head.len() > 2).then(|| head.to_string())
}

/// The object words a caption with these facts may use.
#[derive(Debug, Clone)]
pub struct AllowedWords {
    words: HashSet<String>,
}

impl AllowedWords {
    pub fn for_facts(facts: &Facts) -> Self {
        let mut words = HashSet::new();
        let mut add = |text: &str| {
            for word in split_words(&text.to_lowercase()) {
                words.insert(word.to_string());
            }
        };
        let wn = wordnet();
        for subject in &facts.objects {
            add(&subject.label);
            let ancestors = wn.ancestors(subject.index);
            match &subject.synset {
                // A shared noun: it and what is above it, not the doubtful class's own names.
                Some(id) => {
                    let level = ancestors
                        .iter()
                        .find(|&&(row, _)| wn.synset(row).id() == *id)
                        .map_or(u8::MAX, |&(_, level)| level);
                    for &(row, up) in ancestors {
                        if up >= level {
                            wn.synset(row).lemmas.iter().for_each(|l| add(l));
                        }
                    }
                }
                // The class: its names, what it is a kind of, and its definition's head.
                None => {
                    if let Some(class) = imagenet().get(subject.index) {
                        add(class.lemmas);
                        if let Some(head) = first_clause(class.definition) {
                            add(&head);
                        }
                    }
                    for lemma in wn.ancestor_lemmas(subject.index) {
                        add(lemma);
                    }
                }
            }
        }
        for alternative in &facts.alternatives {
            add(alternative);
        }
        if let Some(likely) = &facts.likely {
            add(&likely.label);
            if let Some(class) = imagenet().get(likely.index) {
                add(class.lemmas);
            }
        }
        Self { words }
    }

    /// Whether a caption may contain `word` (one word as written, any case): no digits, and
    /// an object word only when the facts hold it. Each part of a hyphenated word is checked
    /// ("tiger-like" needs "tiger").
    pub fn permits(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        if word.chars().any(|c| c.is_ascii_digit() || c == '%') {
            return false;
        }
        word.split(['-', '\'', '’'])
            .filter(|part| !part.is_empty())
            .all(|part| {
                let forms = singular_forms(part);
                forms.iter().any(|f| self.words.contains(f))
                    || !forms.iter().any(|f| object_words().contains(f))
            })
    }
}

/// The word and what it may be the plural of ("boxes" → "boxe", "box"; "puppies" → "puppy").
fn singular_forms(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_string()];
    if word.len() > 3 {
        if let Some(stem) = word.strip_suffix("ies") {
            forms.push(format!("{stem}y"));
        }
        if let Some(stem) = word.strip_suffix("es") {
            forms.push(stem.to_string());
        }
        if let Some(stem) = word.strip_suffix('s') {
            forms.push(stem.to_string());
        }
    }
    forms
}

/// The words of a text: runs of letters, digits, hyphens and apostrophes.
pub fn split_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
}

/// Letters, digits and the marks inside words ("tiger-like", "dog's").
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '\'' | '’' | '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::facts::Facts;
    use crate::vision::Prediction;

    fn facts(index: usize, prob: f32) -> Facts {
        Facts::from_top(&[Prediction {
            index,
            label: imagenet()[index].name().into(),
            prob,
        }])
        .unwrap()
    }

    #[test]
    fn object_words_include_class_heads_and_common_nouns() {
        let words = object_words();
        for word in [
            "mastiff", "car", "shark", "man", "table", "beach", "parrot", "bird",
        ] {
            assert!(words.contains(word), "{word}");
        }
        assert!(!words.contains("white") && !words.contains("great"));
    }

    #[test]
    fn only_the_facts_object_words_are_permitted() {
        let allowed = AllowedWords::for_facts(&facts(243, 0.9)); // bull mastiff
        assert!(allowed.permits("mastiff") && allowed.permits("Mastiffs"));
        assert!(allowed.permits("bull") && allowed.permits("breed"));
        assert!(
            allowed.permits("dog") && allowed.permits("animals"),
            "its kinds"
        );
        assert!(allowed.permits("large") && allowed.permits("sitting"));
        assert!(!allowed.permits("boxer"), "a rival is not a second object");
        assert!(!allowed.permits("man") && !allowed.permits("beach"));
        assert!(!allowed.permits("tables"));
    }

    #[test]
    fn numbers_and_hyphenated_objects_are_refused() {
        let allowed = AllowedWords::for_facts(&facts(243, 0.9));
        assert!(!allowed.permits("98%") && !allowed.permits("2"));
        assert!(!allowed.permits("tiger-like"));
        assert!(allowed.permits("mastiff-like"));
    }

    #[test]
    fn when_unsure_the_alternatives_may_be_named() {
        let mut f = facts(243, 0.15);
        f.alternatives = vec!["bull mastiff".into(), "boxer".into()];
        assert!(AllowedWords::for_facts(&f).permits("boxer"));
    }
}
