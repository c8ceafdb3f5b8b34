//! `nabla make-subset`: regenerates `data/mnist-subset/` from the IDX files.

use super::args::MakeSubsetArgs;
use super::output::say;
use super::CliError;

/// Writes the two CSV files and names them on stdout.
pub fn run(args: &MakeSubsetArgs) -> Result<(), CliError> {
    let paths =
        nabla::data::write_mnist_subset(&args.mnist, &args.out, args.train_rows, args.test_rows)?;
    for path in paths {
        say(&format!("wrote {}", path.display()))?;
    }
    Ok(())
}
