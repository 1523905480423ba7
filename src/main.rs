//! The `ranged` binary: everything lives in the library; this only hands the
//! arguments over and turns the result into the exit code.

fn main() {
    std::process::exit(ranged::run::main(std::env::args_os().skip(1)));
}
