fn main() -> std::process::ExitCode {
    chatterbox::cli::main()
}
