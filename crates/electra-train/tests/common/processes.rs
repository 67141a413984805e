//! Child processes for the multi-node tests of electra-train and electra-cli (both include
//! this file with `#[path]`, so the two test crates share one copy): free ports for a
//! coordinator and its nodes, and a started process whose output is drained on threads and
//! which is killed if the test ends first.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A coordinator port whose two following ports (the nodes' tensor services) are free too.
pub fn free_ports() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        if port < 65000 && (0..3).all(|i| TcpListener::bind(("0.0.0.0", port + i)).is_ok()) {
            return port;
        }
    }
    panic!("no three free consecutive ports");
}

/// A started process: its output read on threads (a full pipe cannot block it), and killed
/// if the test ends, or panics, before it exits.
pub struct Proc {
    child: Child,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    })
}

impl Proc {
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a process");
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        Self { child, out, err }
    }

    /// The process id (to signal it; electra-cli's SIGTERM test).
    #[allow(dead_code)] // electra-train's tests, which include this file too, signal no process
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `limit`, killing it past that: (exited in time, success, stdout and
    /// stderr).
    pub fn wait(mut self, limit: Duration) -> (bool, bool, String) {
        let start = Instant::now();
        let (in_time, status) = loop {
            match self.child.try_wait().expect("wait") {
                Some(status) => break (true, status),
                None if start.elapsed() > limit => {
                    let _ = self.child.kill();
                    break (false, self.child.wait().expect("wait"));
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let text = |h: Option<JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let text = format!("{}{}", text(self.out.take()), text(self.err.take()));
        (in_time, status.success(), text)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
