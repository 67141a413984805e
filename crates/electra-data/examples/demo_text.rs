//! Prints a few documents of the demo corpus: `cargo run -p electra-data --example demo_text`.

fn main() {
    let corpus = electra_data::DemoCorpus::new(0, 3);
    for doc in corpus.documents() {
        for line in doc {
            println!("{line}");
        }
        println!();
    }
}
