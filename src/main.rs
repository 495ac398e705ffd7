fn main() {
    std::process::exit(ovn_ic::daemon::main());
}
