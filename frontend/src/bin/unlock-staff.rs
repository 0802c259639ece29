//! The staff app: the status view and the Registration Authority's tools.

fn main() {
    unlock_frontend::mount_staff();
}
