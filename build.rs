//! Links the system OpenBLAS, found through pkg-config, and stops the build with the
//! install command when it is missing (instead of an unreadable linker error later).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    match pkg_config::Config::new().probe("openblas") {
        Ok(library) => {
            for path in &library.link_paths {
                println!("cargo:rustc-link-search=native={}", path.display());
            }
        }
        Err(error) => {
            eprintln!(
                "\nnabla needs the system OpenBLAS (with its pkg-config file), which was not found:\n  {error}\n\n\
                 Install it, then build again:\n  \
                 Debian/Ubuntu:  sudo apt-get install -y libopenblas-dev pkg-config\n  \
                 Fedora:         sudo dnf install -y openblas-devel pkgconf-pkg-config\n  \
                 macOS:          brew install openblas pkg-config && \
                 export PKG_CONFIG_PATH=\"$(brew --prefix openblas)/lib/pkgconfig\"\n"
            );
            panic!("the system OpenBLAS was not found (see the install commands above)");
        }
    }
}
