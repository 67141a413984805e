//! Small generated GLUE-format files for the smoke budget (no real data needed): RTE with a
//! train file only (validation is carved from it) and SST-2 with train and dev, so both of
//! `electra finetune`'s validation paths run. Sentences are seeded word sequences; labels
//! follow a keyword, so a model can in principle learn them.

use std::fmt::Write as _;
use std::path::Path;

use super::files;
use super::stats::SplitMix64;

const WORDS: [&str; 16] = [
    "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park", "good", "bad", "very",
    "film", "was", "not",
];

fn sentence(rng: &mut SplitMix64, len: usize, keyword: &str) -> String {
    let mut words: Vec<&str> = (0..len).map(|_| WORDS[rng.index(10)]).collect();
    let at = rng.index(len);
    words[at] = keyword;
    words.join(" ")
}

/// Writes `RTE/train.tsv` and `SST-2/{train,dev}.tsv` under `dir` (skipped when present).
pub fn write_glue(dir: &Path, examples: usize) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(17);
    let rte = dir.join("RTE/train.tsv");
    if !rte.is_file() {
        let mut text = String::from("index\tsentence1\tsentence2\tlabel\n");
        for i in 0..examples {
            let entail = i % 2 == 0;
            let a = sentence(&mut rng, 8, "film");
            let b = sentence(&mut rng, 4, if entail { "was" } else { "not" });
            let label = if entail {
                "entailment"
            } else {
                "not_entailment"
            };
            let _ = writeln!(text, "{i}\t{a}\t{b}\t{label}");
        }
        files::write_text(&rte, &text)?;
    }
    for (split, n) in [("train", examples), ("dev", examples / 2)] {
        let path = dir.join(format!("SST-2/{split}.tsv"));
        if path.is_file() {
            continue;
        }
        let mut text = String::from("sentence\tlabel\n");
        for i in 0..n {
            let positive = i % 2 == 0;
            let s = sentence(&mut rng, 6, if positive { "good" } else { "bad" });
            let _ = writeln!(text, "{s} \t{}", u8::from(positive));
        }
        files::write_text(&path, &text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_have_the_glue_layouts() {
        let dir = std::env::temp_dir().join(format!("xtask-glue-{}", std::process::id()));
        write_glue(&dir, 10).expect("write");
        let rte = std::fs::read_to_string(dir.join("RTE/train.tsv")).expect("rte");
        let lines: Vec<&str> = rte.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "index\tsentence1\tsentence2\tlabel");
        assert!(lines[1].ends_with("\tentailment") && lines[2].ends_with("\tnot_entailment"));
        assert_eq!(lines[1].split('\t').count(), 4);
        let dev = std::fs::read_to_string(dir.join("SST-2/dev.tsv")).expect("dev");
        assert_eq!(dev.lines().count(), 6);
        assert!(dev.lines().nth(1).expect("row").ends_with(" \t1"));
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
