//! A Worker in raw `workerd` (no wrangler or Miniflare in between), from a
//! generated config, with the process's own CPU accounting.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One module of a Worker.
#[derive(Debug, Clone)]
pub enum Module {
    /// An ES module file.
    Es(String, PathBuf),
    /// A compiled WebAssembly module file.
    Wasm(String, PathBuf),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Modules; the first is the entry point.
    pub modules: Vec<Module>,
    /// Text bindings (`[vars]` and secrets).
    pub bindings: Vec<(String, String)>,
}

/// A running workerd.
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    /// Its config, modules and log: removed when it stops, kept (and named
    /// in the error) when it failed to start.
    dir: Option<PathBuf>,
}

impl Workerd {
    /// Writes a config for `spec` into `dir`, starts `workerd serve` on a free
    /// loopback port and waits until it accepts connections.
    pub fn start(workerd: &Path, spec: &WorkerSpec, dir: &Path) -> Result<Self, String> {
        Self::start_with(workerd, spec, dir, None)
    }

    /// As [`Workerd::start`], with V8's inspector listening on a free
    /// loopback port too; returns its WebSocket URL for the Worker.
    pub fn start_inspected(workerd: &Path, spec: &WorkerSpec, dir: &Path) -> Result<(Self, String), String> {
        let port = free_port()?;
        let w = Self::start_with(workerd, spec, dir, Some(port))?;
        Ok((w, format!("ws://127.0.0.1:{port}/main")))
    }

    fn start_with(workerd: &Path, spec: &WorkerSpec, dir: &Path, inspector: Option<u16>) -> Result<Self, String> {
        let port = free_port()?;
        // workerd embeds files relative to the config: copy each module beside it.
        let dir = dir.join(format!("workerd-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut local = spec.clone();
        for m in &mut local.modules {
            let (Module::Es(name, path) | Module::Wasm(name, path)) = m;
            let copy = dir.join(name.as_str());
            std::fs::copy(&*path, &copy).map_err(|e| format!("{}: {e}", path.display()))?;
            *path = PathBuf::from(name.as_str());
        }
        let config = dir.join("config.capnp");
        std::fs::write(&config, capnp(&local, port)).map_err(|e| format!("{}: {e}", config.display()))?;
        let dir = dir.as_path();
        let log = std::fs::File::create(dir.join("workerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(workerd)
            .arg("serve")
            .arg("config.capnp")
            .args(inspector.map(|p| format!("--inspector-addr=127.0.0.1:{p}")))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", workerd.display()))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut w = Self { child, addr, dir: None };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "workerd did not listen on {addr} within 30 s (see {})",
                    dir.display()
                ));
            }
            if let Ok(Some(status)) = w.child.try_wait() {
                return Err(format!("workerd exited with {status} (see {})", dir.display()));
            }
            // Often enough that a cold start's time to listening is read to the millisecond.
            std::thread::sleep(Duration::from_millis(1));
        }
        w.dir = Some(dir.to_path_buf());
        Ok(w)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// CPU seconds (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        cpu_seconds(self.child.id())
    }

    /// Moves every thread of the process onto `cpu`.
    pub fn pin(&self, cpu: usize) -> Result<(), String> {
        pin(&self.child.id().to_string(), &cpu.to_string(), true)
    }

    /// Lets every thread of the process run on every CPU this process may
    /// use again.
    pub fn unpin(&self) -> Result<(), String> {
        pin(&self.child.id().to_string(), &allowed_cpus()?, true)
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    edgehose_local::tools::free_port().map_err(|e| e.to_string())
}

/// Moves the calling thread onto `cpu`.
pub fn pin_this_thread(cpu: usize) -> Result<(), String> {
    let me = std::fs::read_link("/proc/thread-self").map_err(|e| format!("/proc/thread-self: {e}"))?;
    let tid = me
        .file_name()
        .and_then(|t| t.to_str())
        .ok_or("/proc/thread-self names no thread")?
        .to_owned();
    pin(&tid, &cpu.to_string(), false)
}

/// The CPUs this process may run on (`Cpus_allowed_list`, e.g. `0-1` or
/// `2,5-7`): a container's CPU set need not include CPU 0.
pub fn allowed_cpus() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|list| list.trim().to_owned())
        .ok_or_else(|| "no Cpus_allowed_list in /proc/self/status".to_owned())
}

/// The first of them.
pub fn first_allowed_cpu() -> Result<usize, String> {
    let list = allowed_cpus()?;
    list.split([',', '-'])
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("Cpus_allowed_list {list:?} names no CPU"))
}

/// `taskset` (util-linux) sets the affinity of a process or thread id.
fn pin(id: &str, cpus: &str, all_threads: bool) -> Result<(), String> {
    let mut cmd = Command::new("taskset");
    if all_threads {
        cmd.arg("-a");
    }
    let out = cmd
        .args(["-p", "-c", cpus, id])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -p {id}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// User + system CPU seconds of a process, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ticks / clock_ticks_per_second())
}

/// One process of a tree: its id, command name and CPU seconds so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// The command name (`comm`).
    pub name: String,
    /// User + system CPU seconds.
    pub cpu: f64,
}

/// Every live process: pid, parent and name, from `/proc/*/stat`.
pub fn processes() -> Vec<Proc> {
    let ticks = clock_ticks_per_second();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.push(Proc {
            pid,
            ppid: num(1) as u32,
            name: stat[open + 1..close].to_owned(),
            cpu: (num(11) + num(12)) / ticks,
        });
    }
    out
}

/// `root` and every process below it.
pub fn tree(all: &[Proc], root: u32) -> Vec<Proc> {
    let mut out: Vec<Proc> = all.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].pid;
        out.extend(all.iter().filter(|p| p.ppid == parent && p.pid != root).cloned());
        i += 1;
    }
    out
}

fn clock_ticks_per_second() -> f64 {
    getconf("CLK_TCK").unwrap_or(100.0)
}

/// A system setting (`getconf NAME`), when it is a number.
pub fn getconf(name: &str) -> Option<f64> {
    Command::new("getconf")
        .arg(name)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
}

/// The workerd config (Cap'n Proto text) for a spec.
pub fn capnp(spec: &WorkerSpec, port: u16) -> String {
    let modules: Vec<String> = spec
        .modules
        .iter()
        .map(|m| match m {
            Module::Es(name, path) => format!("(name = {name:?}, esModule = embed {:?})", path.display().to_string()),
            Module::Wasm(name, path) => format!("(name = {name:?}, wasm = embed {:?})", path.display().to_string()),
        })
        .collect();
    let bindings: Vec<String> = spec
        .bindings
        .iter()
        .map(|(k, v)| format!("(name = {k:?}, text = {v:?})"))
        .collect();
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [{}],
  compatibilityDate = "2026-11-01",
  bindings = [{}],
  globalOutbound = "internet",
);
"#,
        modules.join(", "),
        bindings.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_embeds_modules_in_order_and_binds_text() {
        let spec = WorkerSpec {
            modules: vec![
                Module::Es("index.js".into(), "/b/index.js".into()),
                Module::Wasm("index_bg.wasm".into(), "/b/index_bg.wasm".into()),
            ],
            bindings: vec![("FIREHOSE_STREAM".into(), "bench".into())],
        };
        let c = capnp(&spec, 9000);
        assert!(c.contains(r#"modules = [(name = "index.js", esModule = embed "/b/index.js"), (name = "index_bg.wasm", wasm = embed "/b/index_bg.wasm")]"#), "{c}");
        assert!(c.contains(r#"bindings = [(name = "FIREHOSE_STREAM", text = "bench")]"#));
        assert!(c.contains(r#"address = "127.0.0.1:9000""#));
    }

    #[test]
    fn a_process_tree_holds_the_children_and_their_children() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            name: format!("p{pid}"),
            cpu: 0.0,
        };
        let all = vec![p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10)];
        let pids: Vec<u32> = tree(&all, 10).iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![10, 11, 13, 12]);
        assert!(tree(&all, 99).is_empty());
        let me = processes().into_iter().find(|p| p.pid == std::process::id()).unwrap();
        assert!(me.ppid > 0 && !me.name.is_empty());
    }

    #[test]
    fn this_process_has_cpu_time() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_seconds(std::process::id()).unwrap() > 0.0);
    }
}
