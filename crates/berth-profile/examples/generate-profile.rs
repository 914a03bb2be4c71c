//! Prints a large generated profile: `cargo run --release -p berth-profile --example generate-profile -- LAYERS IMAGES_PER_LAYER`.
fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let layers = args.next().unwrap_or(200);
    let per_layer = args.next().unwrap_or(10);
    print!(
        "{}",
        berth_profile::generate_large_profile(layers, per_layer)
    );
}
