//! The prompt a caption is written from, and the template that says the same facts plainly.
//!
//! The model receives facts, never the classifier's percentages (a model shown "67%" copies
//! it), in a ChatML prompt (SmolLM2's template) whose few-shot examples are chosen by case, the
//! example of the same case last: a 135M model copies the last example's pattern.

use super::facts::{Certainty, Facts, Subject, article};

const SYSTEM: &str = "You write one short, true sentence about a photo from the facts given. Name only the things in the facts.";

/// (facts, caption) examples, one per case.
const SURE_EXAMPLE: (&str, &str) = (
    "a golden retriever (breed of dog)",
    "A golden retriever, a breed of dog.",
);
const PROBABLE_EXAMPLE: (&str, &str) = (
    "probably an espresso (strong black coffee)",
    "Probably an espresso, a strong black coffee.",
);
const TWO_EXAMPLE: (&str, &str) = (
    "a tabby (domestic cat) on the left; an orange on the right",
    "A tabby cat on the left and an orange on the right.",
);

/// What opens a user turn, before its facts.
const FACTS_LABEL: &str = "Facts:";

fn user_turn(facts: &str) -> String {
    format!("{FACTS_LABEL}{}", after_label(facts))
}

/// A user turn after its label.
fn after_label(facts: &str) -> String {
    format!(" {facts}\nCaption:")
}

/// One object as the facts line writes it: `a yurt (circular domed dwelling)`, or with
/// another object `a yurt on the left` (a definition there gets attached to the wrong one).
fn describe_subject(subject: &Subject) -> String {
    let mut text = format!("{} {}", article(&subject.label), subject.label);
    if let (Some(definition), None) = (subject.definition(), &subject.position) {
        text.push_str(&format!(" ({definition})"));
    }
    if let Some(position) = &subject.position {
        text.push_str(&format!(" {position}"));
    }
    text
}

/// The facts line of the prompt. No numbers: a model shown "67%" copies it.
pub fn describe(facts: &Facts) -> String {
    let objects: Vec<String> = facts.objects.iter().map(describe_subject).collect();
    let line = objects.join("; ");
    match (&facts.likely, facts.certainty) {
        (Some(likely), _) => format!(
            "{line}, probably {} {}",
            article(&likely.label),
            likely.label
        ),
        (None, Certainty::Probable) if facts.objects.len() == 1 => format!("probably {line}"),
        _ => line,
    }
}

/// The ChatML prompt (SmolLM2's template): the examples of the other cases, then the one of
/// this case, then the request.
pub fn prompt(facts: &Facts) -> String {
    let (beginning, rest) = prompt_parts(facts);
    beginning + &rest
}

/// [`prompt`] in two parts: the beginning, which is the same for every caption of the same
/// case (the system turn, the examples, and the request up to its facts), and the rest (the
/// facts and the assistant's turn). The beginning is about nine tenths of the prompt.
pub fn prompt_parts(facts: &Facts) -> (String, String) {
    let same = match (facts.objects.len(), facts.certainty) {
        (2.., _) => TWO_EXAMPLE,
        (_, Certainty::Probable) => PROBABLE_EXAMPLE,
        _ => SURE_EXAMPLE,
    };
    let mut examples: Vec<(&str, &str)> = [TWO_EXAMPLE, PROBABLE_EXAMPLE, SURE_EXAMPLE]
        .into_iter()
        .filter(|e| *e != same)
        .collect();
    examples.push(same);
    let mut text = format!("<|im_start|>system\n{SYSTEM}<|im_end|>\n");
    for (facts_line, caption) in examples {
        text.push_str(&format!(
            "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{caption}<|im_end|>\n",
            user_turn(facts_line)
        ));
    }
    text.push_str(&format!("<|im_start|>user\n{FACTS_LABEL}"));
    let rest = format!(
        "{}<|im_end|>\n<|im_start|>assistant\n",
        after_label(&describe(facts))
    );
    (text, rest)
}

/// The last word of the class's first name ("bull mastiff" → "mastiff"), which a caption
/// about the photo should contain.
pub fn head_noun(label: &str) -> String {
    label
        .split_whitespace()
        .last()
        .unwrap_or(label)
        .to_lowercase()
}

/// What the facts say, as a plain sentence: the caption when the model's sentence cannot be
/// used, and the caption itself when the classifier is unsure ("Maybe a boxer or a bull
/// mastiff.").
pub fn template(facts: &Facts) -> String {
    let named = |s: &Subject| format!("{} {}", article(&s.label), s.label);
    let sentence = match (facts.objects.as_slice(), facts.certainty) {
        ([main, second, ..], _) => format!(
            "{}{} and {}{}",
            named(main),
            main.position
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
            named(second),
            second
                .position
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
        ),
        (_, Certainty::Unsure) if facts.alternatives.len() >= 2 => format!(
            "maybe {} {} or {} {}",
            article(&facts.alternatives[0]),
            facts.alternatives[0],
            article(&facts.alternatives[1]),
            facts.alternatives[1]
        ),
        ([main], _) if facts.likely.is_some() => {
            let likely = facts.likely.as_ref().expect("checked");
            format!("{}, probably {}", named(main), named(likely))
        }
        ([main], Certainty::Probable) => format!("probably {}", named(main)),
        ([main], _) => format!("a photo of {}", named(main)),
        ([], _) => "a photo".into(),
    };
    let mut chars = sentence.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    format!("{first}{}.", chars.as_str())
}

/// "A photo of a bull mastiff." (the template of one sure subject).
pub fn fallback(label: &str) -> String {
    format!("A photo of {} {label}.", article(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::Prediction;
    use crate::vision::labels::imagenet;

    fn facts(index: usize, prob: f32) -> Facts {
        Facts::from_top(&[
            Prediction {
                index,
                label: imagenet()[index].name().into(),
                prob,
            },
            Prediction {
                index: 242,
                label: "boxer".into(),
                prob: 0.1,
            },
        ])
        .unwrap()
    }

    #[test]
    fn the_prompt_gives_facts_without_numbers_and_the_same_case_last() {
        let text = prompt(&facts(243, 0.674));
        assert!(text.ends_with(
            "Facts: a bull mastiff (large powerful breed)\nCaption:<|im_end|>\n<|im_start|>assistant\n"
        ), "{text}");
        assert!(!text.contains('%') && !text.contains("boxer"));
        assert_eq!(text.matches("<|im_start|>assistant").count(), 4);
        let last_example = text.rfind(SURE_EXAMPLE.1).unwrap();
        assert!(last_example > text.rfind(TWO_EXAMPLE.1).unwrap());
        assert!(prompt(&facts(243, 0.3)).contains("Facts: probably a bull mastiff"));
    }

    #[test]
    fn captions_of_the_same_case_share_the_prompt_up_to_their_facts() {
        let (beginning, rest) = prompt_parts(&facts(243, 0.9));
        assert_eq!(beginning.clone() + &rest, prompt(&facts(243, 0.9)));
        assert!(
            beginning.ends_with("<|im_start|>user\nFacts:"),
            "{beginning}"
        );
        assert!(rest.starts_with(" a bull mastiff"), "{rest}");
        assert_eq!(
            prompt_parts(&facts(817, 0.9)).0,
            beginning,
            "another sure class"
        );
        assert_ne!(
            prompt_parts(&facts(243, 0.3)).0,
            beginning,
            "a probable one"
        );
        assert!(beginning.len() > 8 * rest.len());
    }

    #[test]
    fn the_template_says_what_the_facts_say() {
        assert_eq!(fallback("bull mastiff"), "A photo of a bull mastiff.");
        assert_eq!(fallback("espresso"), "A photo of an espresso.");
        assert_eq!(template(&facts(243, 0.9)), "A photo of a bull mastiff.");
        assert_eq!(template(&facts(243, 0.3)), "Probably a bull mastiff.");
        assert_eq!(
            template(&facts(243, 0.15)),
            "Maybe a bull mastiff or a boxer."
        );
        assert_eq!(head_noun("Loafer"), "loafer");
    }
}
