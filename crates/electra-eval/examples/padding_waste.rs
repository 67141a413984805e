//! How much of an evaluation batch is padding, on real GLUE dev files: every task's dev
//! set(s) tokenized as `electra glue` does (max length 128), batched 64 at a time in three
//! ways: padded to 128 (the reference), padded to each batch's longest example in file order
//! (electra-rs before issue 26), and sorted by length first (now). Reports padded slots /
//! all slots.
//!
//! ```sh
//! cargo run --release -p electra-eval --example padding_waste -- \
//!     ../shared/data/glue ../shared/data/vocab/bert-base-uncased-vocab.txt
//! ```

use std::path::PathBuf;

use electra_data::Tokenizer;
use electra_eval::data;
use electra_eval::features::encode;
use electra_eval::task::{Split, Task};
use electra_eval::tuning::batching::{Padding, by_length, in_order};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(glue), Some(vocab)) = (args.next(), args.next()) else {
        return Err("usage: padding_waste GLUE_DIR VOCAB [BATCH]".into());
    };
    let batch: usize = args.next().map_or(Ok(64), |b| b.parse())?;
    let tokenizer = Tokenizer::from_path(&PathBuf::from(vocab))?;
    let glue = PathBuf::from(glue);
    println!("| Task | Split | Examples | Fixed 128 | File order | Sorted by length |");
    println!("|---|---|---|---|---|---|");
    let mut totals = [Padding::default(); 3];
    for task in Task::ALL {
        for split in [Split::Dev, Split::DevMismatched] {
            let Ok(set) = data::load(&glue, task, split) else {
                continue;
            };
            let encoded = encode(&tokenizer, &set.examples, 128)?;
            let lengths: Vec<usize> = encoded.items.iter().map(|e| e.input_ids.len()).collect();
            let ways = [
                Padding::fixed(&lengths, 128),
                Padding::of(&lengths, &in_order(lengths.len(), batch)),
                Padding::of(&lengths, &by_length(&lengths, batch)),
            ];
            for (t, w) in totals.iter_mut().zip(&ways) {
                t.tokens += w.tokens;
                t.slots += w.slots;
            }
            println!(
                "| {task} | {split:?} | {} | {:.1} % | {:.1} % | {:.1} % |",
                lengths.len(),
                100.0 * ways[0].waste(),
                100.0 * ways[1].waste(),
                100.0 * ways[2].waste()
            );
        }
    }
    println!(
        "| all | | | {:.1} % | {:.1} % | {:.1} % |",
        100.0 * totals[0].waste(),
        100.0 * totals[1].waste(),
        100.0 * totals[2].waste()
    );
    Ok(())
}
