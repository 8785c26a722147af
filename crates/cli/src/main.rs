use clap::Parser;

/// Bitcoin Protozoa: creatures born from Bitcoin blocks, simulated on a worker pool.
#[derive(Parser)]
#[command(name = "protozoa", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
