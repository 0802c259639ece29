//! The holder's app (see the library for what it does).

fn main() {
    unlock_frontend::mount_holder();
}
