//! The 1000 ImageNet-1k classes in the network's output order, with their WordNet lemmas and
//! definitions (from timm's `data/_info`, written to `data/imagenet-1k.tsv` by
//! `glimpse models labels`).

use std::sync::OnceLock;

const TSV: &str = include_str!("../../data/imagenet-1k.tsv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNetClass {
    /// WordNet id, e.g. `n02108422`.
    pub synset: &'static str,
    /// All lemmas, comma-separated, e.g. `bull mastiff`.
    pub lemmas: &'static str,
    pub definition: &'static str,
}

impl ImageNetClass {
    /// The first lemma: the short human-readable name.
    pub fn name(&self) -> &'static str {
        self.lemmas.split(',').next().unwrap_or(self.lemmas).trim()
    }
}

/// All classes, indexed by the network's output index.
pub fn imagenet() -> &'static [ImageNetClass] {
    static CLASSES: OnceLock<Vec<ImageNetClass>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        TSV.lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let mut fields = line.splitn(3, '\t');
                let mut next = || {
                    fields
                        .next()
                        .expect("data/imagenet-1k.tsv has three columns")
                };
                ImageNetClass {
                    synset: next(),
                    lemmas: next(),
                    definition: next(),
                }
            })
            .collect()
    })
}

/// The class a person names: any of its lemmas (case and surrounding spaces ignored, so
/// `"Golden Retriever"` and `"tiger cat"` work) or its index, `"0"` to `"999"`.
pub fn find(name: &str) -> Option<usize> {
    let name = name.trim();
    if let Ok(index) = name.parse::<usize>() {
        return (index < imagenet().len()).then_some(index);
    }
    imagenet().iter().position(|class| {
        class
            .lemmas
            .split(',')
            .any(|lemma| lemma.trim().eq_ignore_ascii_case(name))
    })
}

/// Writes the label table from timm's synset list and its lemma and definition maps.
pub fn build_tsv(synsets: &str, lemmas: &str, definitions: &str) -> Result<String, String> {
    let map = |text: &str| -> std::collections::HashMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let (lemmas, definitions) = (map(lemmas), map(definitions));
    let mut out = String::new();
    for synset in synsets.lines().map(str::trim).filter(|s| !s.is_empty()) {
        let lemma = lemmas.get(synset).ok_or(format!("no lemma for {synset}"))?;
        let definition = definitions
            .get(synset)
            .ok_or(format!("no definition for {synset}"))?;
        out.push_str(&format!("{synset}\t{lemma}\t{definition}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_1000_classes_in_model_order() {
        let classes = imagenet();
        assert_eq!(classes.len(), 1000);
        assert_eq!(classes[0].name(), "tench");
        assert_eq!(classes[243].name(), "bull mastiff");
        assert_eq!(classes[999].synset, "n15075141");
        assert!(classes[243].definition.contains("mastiff"));
    }

    #[test]
    fn a_class_is_found_by_any_lemma_or_its_index() {
        assert_eq!(find("Bull Mastiff"), Some(243));
        assert_eq!(find(" yurt "), Some(915));
        assert_eq!(find("915"), Some(915));
        assert_eq!(find("1000"), None);
        assert_eq!(find("unicorn"), None);
    }
}
