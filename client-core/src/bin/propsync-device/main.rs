//! `propsync-device`: act as an engineer's or patroller's phone from a shell.
//!
//! The program is native only; built for WebAssembly (where the field app
//! runs the same library in the browser) it is an empty stub, so
//! `cargo build -p propsync-client --target wasm32-unknown-unknown` works.

#[cfg(not(target_family = "wasm"))]
mod cli;

#[cfg(not(target_family = "wasm"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(target_family = "wasm")]
fn main() {}
