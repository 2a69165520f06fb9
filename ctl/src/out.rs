//! Standard output for the commands: a closed pipe (`coboxctl … | head -1`) ends the command
//! quietly with the status a Unix tool killed by SIGPIPE has, never with a panic.

use std::io::Write;

/// The exit status of a command whose reader went away (128 + SIGPIPE).
pub const CLOSED_PIPE: i32 = 141;

/// Write `args` (and a newline when `newline`) to standard output.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(CLOSED_PIPE);
        }
        eprintln!("coboxctl: cannot write to standard output: {e}");
        std::process::exit(74);
    }
}

/// Whether `e` comes from writing to a reader that went away.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that ends the command quietly on a closed pipe.
macro_rules! outln {
    () => { $crate::out::write(format_args!(""), true) };
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), true) };
}

/// `print!` that ends the command quietly on a closed pipe.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write(format_args!($($t)*), false) };
}
