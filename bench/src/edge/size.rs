//! The edge Worker's size: what its wasm holds — the bytes of each function
//! body, summed by the crate its name (from the `name` section) belongs to —
//! and what the size costs a cold start: compiling the module in V8, in a
//! fresh Node each time. `tools/build-edge` keeps a copy of the Worker with
//! its names (`target/edge/<build dir>.named.wasm`); the deployed one has
//! none.

use std::path::Path;

use std::collections::BTreeMap;

/// Code bytes by crate, largest first, and the module's section sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// `(crate, bytes of its function bodies)`, largest first.
    pub crates: Vec<(String, usize)>,
    /// Bytes of the code section (all function bodies).
    pub code: usize,
    /// Bytes of the data section (strings, tables, statics).
    pub data: usize,
}

/// Reads `wasm`'s code and names; `Err` when it is not a wasm module or has
/// no function names.
pub fn breakdown(wasm: &[u8]) -> Result<Breakdown, String> {
    if wasm.get(..4) != Some(b"\0asm") {
        return Err("not a wasm module".into());
    }
    let mut at = 8;
    let (mut imported, mut bodies, mut names) = (0usize, Vec::new(), BTreeMap::new());
    let (mut code, mut data) = (0, 0);
    while at < wasm.len() {
        let id = wasm[at];
        let (size, start) = leb(wasm, at + 1)?;
        let end = start + size;
        let section = wasm.get(start..end).ok_or("a section runs past the end")?;
        match id {
            2 => imported = imported_functions(section)?,
            10 => {
                code = size;
                bodies = function_bodies(section)?;
            }
            11 => data = size,
            0 => {
                let (len, n) = leb(section, 0)?;
                if section.get(n..n + len) == Some(b"name") {
                    names = function_names(&section[n + len..])?;
                }
            }
            _ => {}
        }
        at = end;
    }
    if names.is_empty() {
        return Err("the module has no function names (tools/build-edge keeps a named copy in target/edge)".into());
    }
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for (i, len) in bodies.into_iter().enumerate() {
        let name = names.get(&(imported + i)).map_or("", String::as_str);
        *by.entry(crate_of(name)).or_default() += len;
    }
    let mut crates: Vec<(String, usize)> = by.into_iter().collect();
    crates.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Breakdown { crates, code, data })
}

/// The crate a symbol belongs to: its path's first segment, or for
/// `<T as Trait>::f` with a primitive `T` the trait's. Glue wasm-bindgen
/// generates ("… externref shim") is its own line; an unnamed function is
/// "unnamed".
pub fn crate_of(symbol: &str) -> String {
    if symbol.is_empty() {
        return "unnamed".into();
    }
    if symbol.contains(" shim") || symbol.starts_with("Closure(") || symbol.contains(" -> ") {
        return "wasm-bindgen glue".into();
    }
    let mut s = symbol.trim_start_matches(['<', '&']);
    for prefix in ["mut ", "dyn ", "const "] {
        s = s.strip_prefix(prefix).unwrap_or(s);
    }
    let first = first_segment(s);
    let primitive = first.is_empty()
        || matches!(
            first,
            "f32"
                | "f64"
                | "u8"
                | "u16"
                | "u32"
                | "u64"
                | "u128"
                | "usize"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "i128"
                | "isize"
                | "bool"
                | "char"
                | "str"
                | "T"
                | "A"
        );
    let name = match (primitive, s.split_once(" as ")) {
        (true, Some((_, tr))) => first_segment(tr.trim_start_matches(['<', '&'])),
        _ => first,
    };
    if name.is_empty() { "other".into() } else { name.into() }
}

/// `serde_json` of `serde_json::de::…`, `core` of `core[c5930c85]::fmt`.
fn first_segment(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn leb(bytes: &[u8], mut at: usize) -> Result<(usize, usize), String> {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let b = *bytes.get(at).ok_or("a LEB128 number runs past the end")?;
        at += 1;
        value |= usize::from(b & 0x7f)
            .checked_shl(shift)
            .ok_or("a LEB128 number is too long")?;
        if b & 0x80 == 0 {
            return Ok((value, at));
        }
        shift += 7;
        if shift > 35 {
            return Err("a LEB128 number is too long".into());
        }
    }
}

/// How many functions the import section brings in (they come first in
/// the function index space).
fn imported_functions(section: &[u8]) -> Result<usize, String> {
    let (count, mut at) = leb(section, 0)?;
    let mut functions = 0;
    for _ in 0..count {
        for _ in 0..2 {
            let (len, next) = leb(section, at)?;
            at = next + len;
        }
        let kind = *section.get(at).ok_or("an import runs past the end")?;
        at += 1;
        match kind {
            0 => {
                functions += 1;
                at = leb(section, at)?.1;
            }
            1 => {
                // table: element type, then limits
                at += 1;
                at = limits(section, at)?;
            }
            2 => at = limits(section, at)?,
            3 => at += 2,
            4 => at = leb(section, at + 1)?.1,
            k => return Err(format!("unknown import kind {k}")),
        }
    }
    Ok(functions)
}

fn limits(section: &[u8], at: usize) -> Result<usize, String> {
    let flags = *section.get(at).ok_or("limits run past the end")?;
    let mut at = leb(section, at + 1)?.1;
    if flags & 1 != 0 {
        at = leb(section, at)?.1;
    }
    Ok(at)
}

/// Each function body's size, in order.
fn function_bodies(section: &[u8]) -> Result<Vec<usize>, String> {
    let (count, mut at) = leb(section, 0)?;
    // Each body takes at least one byte: a count past that is malformed.
    let mut sizes = Vec::with_capacity(count.min(section.len()));
    for _ in 0..count {
        let (len, next) = leb(section, at)?;
        sizes.push(len);
        at = next + len;
    }
    Ok(sizes)
}

/// The function names subsection of a `name` section's payload.
fn function_names(payload: &[u8]) -> Result<BTreeMap<usize, String>, String> {
    let mut at = 0;
    let mut names = BTreeMap::new();
    while at < payload.len() {
        let id = payload[at];
        let (size, start) = leb(payload, at + 1)?;
        if id == 1 {
            let (count, mut i) = leb(payload, start)?;
            for _ in 0..count {
                let (index, next) = leb(payload, i)?;
                let (len, next) = leb(payload, next)?;
                let bytes = payload.get(next..next + len).ok_or("a name runs past the end")?;
                names.insert(index, String::from_utf8_lossy(bytes).into_owned());
                i = next + len;
            }
        }
        at = start + size;
    }
    Ok(names)
}

/// V8's ways of compiling a module at a cold start, as Node's flags select
/// them.
pub const COMPILE_MODES: [(&str, &[&str]); 2] = [
    ("lazily (V8's default: each function when first called)", &[]),
    ("eagerly, baseline compiler (Liftoff)", &["--no-wasm-lazy-compilation"]),
];

/// Milliseconds `new WebAssembly.Module` takes for `wasm` in a fresh Node
/// with `flags`, one process per round (V8 caches a module it has compiled),
/// median of `rounds`, with every round.
pub fn compile_ms(
    node: &Path,
    harness: &Path,
    wasm: &Path,
    flags: &[&str],
    rounds: usize,
) -> Result<(f64, Vec<f64>), String> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let v = crate::harness::node::run_json(node, flags, harness, &[wasm.as_os_str()])?;
        times.push(crate::harness::node::number(&v, "ms", harness)?);
    }
    Ok((edgehose_latency::stats::median(&times), times))
}

/// Everything measured of the Worker's size.
#[derive(Debug, Clone)]
pub struct Size {
    /// The deployed wasm, gzipped (`gzip -9`).
    pub gzip_bytes: usize,
    /// The deployed wasm as is.
    pub raw_bytes: usize,
    /// What the named copy holds, or why it could not be read.
    pub breakdown: Result<Breakdown, String>,
    /// Per compile mode: its name, the median ms and every round's.
    pub compile: Vec<(&'static str, f64, Vec<f64>)>,
}

/// Measures the deployed `wasm`, its named copy `named` and, with `node`,
/// compiling it `rounds` times per mode.
pub fn measure(wasm: &Path, named: &Path, node: Option<&Path>, harness: &Path, rounds: usize) -> Result<Size, String> {
    let raw_bytes = std::fs::metadata(wasm)
        .map_err(|e| format!("{}: {e}", wasm.display()))?
        .len() as usize;
    let breakdown = std::fs::read(named)
        .map_err(|e| format!("{}: {e} (build the Worker with tools/build-edge)", named.display()))
        .and_then(|bytes| breakdown(&bytes));
    let mut compile = Vec::new();
    if let Some(node) = node {
        for (mode, flags) in COMPILE_MODES {
            let (ms, each) = compile_ms(node, harness, wasm, flags, rounds)?;
            compile.push((mode, ms, each));
        }
    }
    Ok(Size {
        gzip_bytes: crate::edge::gzipped_size(wasm)?,
        raw_bytes,
        breakdown,
        compile,
    })
}

/// Crates named in the text, largest first; the rest are summed.
const SHOWN: usize = 10;

/// The paragraph BENCHMARKS.md shows under the edge Worker's table.
pub fn render(size: &Size) -> String {
    let kb = |b: usize| format!("{:.1} KB", b as f64 / 1000.0);
    let mut t = format!(
        "\n**Its size**: {} gzipped, {} as deployed.",
        kb(size.gzip_bytes),
        kb(size.raw_bytes)
    );
    match &size.breakdown {
        Ok(b) => {
            let total: usize = b.crates.iter().map(|c| c.1).sum::<usize>().max(1);
            let shown: Vec<String> = b
                .crates
                .iter()
                .take(SHOWN)
                .map(|(name, bytes)| format!("{name} {} ({:.0}%)", kb(*bytes), 100.0 * *bytes as f64 / total as f64))
                .collect();
            let rest: usize = b.crates.iter().skip(SHOWN).map(|c| c.1).sum();
            t.push_str(&format!(
                " Before gzip its code is {} and its data {}; the code by crate (function bodies, from the named copy `tools/build-edge` keeps): {}, the other {} crates {}.",
                kb(b.code),
                kb(b.data),
                shown.join(", "),
                b.crates.len().saturating_sub(SHOWN),
                kb(rest)
            ));
        }
        Err(e) => t.push_str(&format!(" (No breakdown by crate: {e}.)")),
    }
    if !size.compile.is_empty() {
        let modes: Vec<String> = size
            .compile
            .iter()
            .map(|(mode, ms, each)| {
                let lo = each.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = each.iter().copied().fold(0.0, f64::max);
                format!("{mode} {ms:.1} ms ({lo:.1}–{hi:.1})")
            })
            .collect();
        t.push_str(&format!(
            " Compiling it cold (`new WebAssembly.Module` in Node's V8, a fresh process each of {} rounds, median and range): {}.",
            size.compile[0].2.len(),
            modes.join("; ")
        ));
    }
    t.push('\n');
    t
}

/// The size as the raw results record it.
pub fn to_json(size: &Size) -> serde_json::Value {
    serde_json::json!({
        "gzip_bytes": size.gzip_bytes,
        "raw_bytes": size.raw_bytes,
        "code_bytes": size.breakdown.as_ref().ok().map(|b| b.code),
        "data_bytes": size.breakdown.as_ref().ok().map(|b| b.data),
        "code_by_crate": size.breakdown.as_ref().ok().map(|b| b.crates.iter().map(|(c, n)| serde_json::json!({"crate": c, "bytes": n})).collect::<Vec<_>>()),
        "compile_ms": size.compile.iter().map(|(mode, ms, each)| serde_json::json!({"mode": mode, "median": ms, "rounds": each})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_belong_to_the_crate_of_their_path_or_trait() {
        for (symbol, krate) in [
            ("edgehose_edge::window::deliver::{{closure}}::h12c3", "edgehose_edge"),
            ("<f64 as core[c5930c85a12de822]::fmt::Display>::fmt", "core"),
            (
                "<&mut serde_json::de::Deserializer<R> as serde_core::de::Deserializer>::deserialize_any::h1",
                "serde_json",
            ),
            (
                "<dlmalloc[e24a2]::dlmalloc::Dlmalloc<dlmalloc[e24a2]::sys::System>>::malloc",
                "dlmalloc",
            ),
            ("fetch externref shim", "wasm-bindgen glue"),
            ("<char>::escape_debug_ext", "char"),
            ("", "unnamed"),
        ] {
            assert_eq!(crate_of(symbol), krate, "{symbol}");
        }
    }

    /// A module of one imported and two defined functions, named.
    fn module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // type section: one type () -> ()
        m.extend([1, 4, 1, 0x60, 0, 0]);
        // import section: "m" "f" func type 0
        m.extend([2, 7, 1, 1, b'm', 1, b'f', 0, 0]);
        // function section: two functions of type 0
        m.extend([3, 3, 2, 0, 0]);
        // code section: bodies of 2 and 4 bytes
        m.extend([10, 9, 2, 2, 0, 0x0b, 4, 0, 0x01, 0x01, 0x0b]);
        // data section: 3 bytes (contents irrelevant here)
        m.extend([11, 3, 0, 0, 0]);
        // name section: function names 1 -> "a::x", 2 -> "b::y"
        let names = [1u8, 4, b'a', b':', b':', b'x', 2, 4, b'b', b':', b':', b'y'];
        let mut sub = vec![1u8, 2];
        sub.extend(names);
        let mut custom = vec![4u8, b'n', b'a', b'm', b'e', 1, sub.len() as u8 - 1];
        custom.extend(&sub[1..]);
        m.push(0);
        m.push(custom.len() as u8);
        m.extend(custom);
        m
    }

    #[test]
    fn bodies_are_counted_by_the_crate_their_name_names() {
        let b = breakdown(&module()).unwrap();
        assert_eq!(b.crates, [("b".to_owned(), 4), ("a".to_owned(), 2)]);
        assert_eq!((b.code, b.data), (9, 3));
    }

    #[test]
    fn the_paragraph_names_the_largest_crates_and_each_compile_mode() {
        let size = Size {
            gzip_bytes: 179_067,
            raw_bytes: 420_000,
            breakdown: breakdown(&module()),
            compile: vec![("lazily", 3.0, vec![2.5, 3.0, 6.0])],
        };
        let t = render(&size);
        assert!(t.contains("179.1 KB gzipped"), "{t}");
        assert!(
            t.contains("b 0.0 KB (67%), a 0.0 KB (33%), the other 0 crates 0.0 KB"),
            "{t}"
        );
        assert!(t.contains("lazily 3.0 ms (2.5–6.0)"), "{t}");
        let none = Size {
            breakdown: Err("no names".into()),
            compile: Vec::new(),
            ..size
        };
        assert!(render(&none).contains("No breakdown by crate: no names."));
    }

    #[test]
    fn a_module_without_names_or_not_wasm_is_an_error() {
        let named = module();
        // Cut inside the name section: it runs past the end.
        let mut cut = named.clone();
        cut.truncate(named.len() - 20);
        assert!(breakdown(&cut).unwrap_err().contains("past the end"));
        // Without the name section at all (the data section ends at byte 44).
        let unnamed = &named[..44];
        assert_eq!(unnamed[39..44], [11, 3, 0, 0, 0]);
        assert!(breakdown(unnamed).unwrap_err().contains("no function names"));
        assert!(breakdown(b"not wasm").is_err());
    }
}
