//! Path handling as a client sees it (docs/semantics.md §4, §6 rows 22–23):
//! hostile targets, dotfiles, symlinks, folders and listings, names that need
//! escaping, content types, and header values that must never split.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;
use std::time::Duration;
use support::{Conn, Response, Server, TempDir, get, raw};

const E400: &[u8] = b"400 Bad Request\n";
const E404: &[u8] = b"404 Not Found\n";
const TXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

fn assert_error(r: &Response, status: u16, body: &[u8], what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body_str());
    assert_eq!(r.body, body, "{what}: only the short error text");
    assert_eq!(r.header("content-type"), Some(TXT), "{what}");
    assert_eq!(r.header("etag"), None, "{what}: no validators of any file");
    assert_eq!(r.header("content-range"), None, "{what}");
}

#[test]
fn hostile_paths_get_400_and_leak_nothing() {
    let dir = TempDir::new();
    let secret = b"SECRET CONTENT";
    dir.write("x", secret);
    dir.write("b", secret);
    dir.write("a/b", secret);
    dir.write("a/x", secret);
    dir.write("x\\y", secret);
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    // Answered by the file server: the connection stays usable.
    for target in [
        "/../x",
        "/..",
        "/a/../../x",
        "/%2e%2e/x",
        "/%2E%2E/x",
        "/.%2e/x",
        "/a/../b",
        "/a/%2e%2e/b",
        "/x%00",
        "/%00/x",
        "/x%5Cy",
        "/a%2Fx",
        "/a%2fx",
        "/%2e%2e%2fx",
        "/%ff",
        "/x%C3",
        "/%",
        "/%zz",
        "/a/..?x=1",
    ] {
        let r = c.request("GET", target, &[("Range", "bytes=0-3")]);
        assert_error(&r, 400, E400, target);
        assert!(!r.body_str().contains("SECRET"), "{target}");
    }
    let r = c.request("GET", "/x", &[]);
    assert_eq!(r.body, secret, "still serving after the refusals");
    // Bytes the request line itself may not carry: 400 from whichever layer
    // sees them first, never the file.
    for request in [
        &b"GET /x\\y HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"GET /..\\x HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /x\0 HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let what = String::from_utf8_lossy(request).into_owned();
        let r = raw(server.addr, request);
        assert_eq!(r.status, 400, "{what:?}");
        assert_eq!(r.body, E400, "{what:?}");
    }
    server.assert_serves("/x", secret);
}

#[test]
fn target_forms_and_queries() {
    let dir = TempDir::new();
    dir.write("file.txt", b"hello file");
    dir.write("a b.txt", b"space");
    dir.write("\u{20ac}.txt", b"euro");
    dir.write("caf\u{e9}/na\u{ef}ve.txt", b"utf8 folder");
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    for (target, body) in [
        ("/file.txt", &b"hello file"[..]),
        ("/file.txt?query=1", b"hello file"),
        ("/file.txt?x=/../../etc/passwd", b"hello file"),
        ("http://host/file.txt", b"hello file"),
        ("HTTP://example.com:8080/file.txt?q", b"hello file"),
        ("/a%20b.txt", b"space"),
        ("/%E2%82%AC.txt", b"euro"),
        ("/%e2%82%ac.txt", b"euro"),
        ("/caf%C3%A9/na%C3%AFve.txt", b"utf8 folder"),
        ("//file.txt", b"hello file"),
        ("/./file.txt", b"hello file"),
    ] {
        let r = c.request("GET", target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, body, "{target}");
        assert_eq!(r.header("content-type"), Some(TXT), "{target}");
    }
    let r = c.request("GET", "http://host/file.txt", &[("Range", "bytes=6-")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 6-9/10"));
    assert_eq!(r.body, b"file");
    // A file is not a folder.
    let r = c.request("GET", "/file.txt/", &[]);
    assert_error(&r, 404, E404, "/file.txt/");
    let r = c.request("GET", "/a+b.txt", &[]);
    assert_error(&r, 404, E404, "+ is not a space in a path");
}

#[test]
fn dotfiles_only_with_the_option() {
    let dir = TempDir::new();
    dir.write(".env", b"KEY=secret");
    dir.write(".git/config", b"[core]");
    dir.write("visible/.hidden", b"hidden");
    dir.write("ok.txt", b"ok");
    {
        let server = Server::start(dir.path());
        let mut c = Conn::open(server.addr);
        for target in [
            "/.env",
            "/.git/config",
            "/.git/",
            "/.git",
            "/visible/.hidden",
            "/%2Eenv",
        ] {
            let r = c.request("GET", target, &[]);
            assert_error(&r, 404, E404, target);
        }
        let r = c.request("GET", "/", &[]);
        assert_eq!(r.status, 200);
        assert!(
            !r.body_str().contains(".env") && !r.body_str().contains(".git"),
            "{}",
            r.body_str()
        );
        assert!(r.body_str().contains(r#"<a href="ok.txt">ok.txt</a>"#));
        let r = c.request("GET", "/visible/", &[]);
        assert!(!r.body_str().contains(".hidden"));
    }
    let server = Server::start_with(dir.path(), &["--dotfiles"]);
    let mut c = Conn::open(server.addr);
    for (target, body) in [
        ("/.env", &b"KEY=secret"[..]),
        ("/.git/config", b"[core]"),
        ("/visible/.hidden", b"hidden"),
    ] {
        let r = c.request("GET", target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, body, "{target}");
    }
    let r = c.request("GET", "/", &[]);
    assert!(
        r.body_str().contains(r#"<a href=".env">.env</a>"#),
        "{}",
        r.body_str()
    );
    // `..` stays refused with --dotfiles.
    let r = c.request("GET", "/visible/../.env", &[]);
    assert_error(&r, 400, E400, "/visible/../.env");
}

#[test]
fn symlinks_outside_the_root_only_with_the_option() {
    let root = TempDir::new();
    let outside = TempDir::new();
    root.write("real.txt", b"inside");
    root.write("sub/deep.txt", b"deep");
    outside.write("secret.txt", b"outside secret");
    outside.write("odir/f.txt", b"outside dir file");
    symlink(
        root.path().join("real.txt"),
        root.path().join("link-in.txt"),
    )
    .unwrap();
    symlink("sub", root.path().join("subl")).unwrap();
    symlink(
        outside.path().join("secret.txt"),
        root.path().join("link-out.txt"),
    )
    .unwrap();
    symlink(outside.path().join("odir"), root.path().join("dir-out")).unwrap();
    symlink(
        "../../../../../../../../etc/hostname",
        root.path().join("rel-out"),
    )
    .unwrap();
    symlink(root.path().join("nowhere"), root.path().join("dangling")).unwrap();
    {
        let server = Server::start(root.path());
        let mut c = Conn::open(server.addr);
        for (target, body) in [
            ("/link-in.txt", &b"inside"[..]),
            ("/subl/deep.txt", b"deep"),
        ] {
            let r = c.request("GET", target, &[]);
            assert_eq!(r.status, 200, "{target}");
            assert_eq!(r.body, body, "{target}");
        }
        for target in [
            "/link-out.txt",
            "/dir-out/f.txt",
            "/dir-out/",
            "/dir-out",
            "/rel-out",
            "/dangling",
        ] {
            let r = c.request("GET", target, &[]);
            assert_error(&r, 404, E404, target);
        }
        let r = c.request("GET", "/", &[]);
        let page = r.body_str();
        assert!(page.contains(r#"href="link-in.txt""#), "{page}");
        assert!(
            !page.contains("link-out") && !page.contains("dir-out"),
            "{page}"
        );
    }
    let server = Server::start_with(root.path(), &["--follow-symlinks"]);
    let mut c = Conn::open(server.addr);
    for (target, body) in [
        ("/link-out.txt", &b"outside secret"[..]),
        ("/dir-out/f.txt", b"outside dir file"),
        ("/link-in.txt", b"inside"),
    ] {
        let r = c.request("GET", target, &[]);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.body, body, "{target}");
    }
    let r = c.request("GET", "/dangling", &[]);
    assert_error(&r, 404, E404, "/dangling with --follow-symlinks");
}

#[test]
fn folders_redirect_index_and_listing() {
    let dir = TempDir::new();
    dir.write("site/index.html", b"<h1>home</h1>");
    dir.write("site/other.txt", b"other");
    dir.write("files/a<b>.txt", b"lt gt");
    dir.write("files/a b.txt", b"12345");
    dir.write("files/q\"&'.txt", b"q");
    dir.write("files/.secret", b"x");
    dir.write("files/sub/x.txt", b"x");
    dir.write("files/\u{20ac}.txt", b"e");
    {
        let server = Server::start(dir.path());
        let mut c = Conn::open(server.addr);
        for (target, location) in [
            ("/site", "/site/"),
            ("/files", "/files/"),
            ("/files/sub", "/files/sub/"),
            ("/files?x=1", "/files/"),
        ] {
            let r = c.request("GET", target, &[]);
            assert_eq!(r.status, 301, "{target}");
            assert_eq!(r.header("location"), Some(location), "{target}");
            assert_eq!(r.body, b"301 Moved Permanently\n");
        }
        let r = c.request("GET", "/site/", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(HTML));
        assert_eq!(r.body, b"<h1>home</h1>");
        assert!(r.header("etag").is_some(), "index.html is served as a file");
        let r = c.request("GET", "/site/", &[("Range", "bytes=4-7")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"home");

        let r = c.request("GET", "/files/", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(HTML));
        let page = r.body_str();
        for needle in [
            r#"<a href="../">../</a>"#,
            r#"<a href="a%20b.txt">a b.txt</a>"#,
            r#"<a href="a%3Cb%3E.txt">a&lt;b&gt;.txt</a>"#,
            r#"<a href="q%22%26%27.txt">q&quot;&amp;&#39;.txt</a>"#,
            r#"<a href="sub/">sub/</a>"#,
            r#"<a href="%E2%82%AC.txt">€.txt</a>"#,
        ] {
            assert!(page.contains(needle), "listing lacks {needle}:\n{page}");
        }
        assert!(!page.contains("a<b>"), "raw name in the page:\n{page}");
        assert!(!page.contains("secret"), "dotfile listed:\n{page}");
        // Folders first, then names in byte order.
        let order: Vec<usize> = ["sub/", "a%20b.txt", "a%3Cb%3E.txt", "q%22", "%E2%82%AC.txt"]
            .iter()
            .map(|n| page.find(&format!("href=\"{n}")).expect(n))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "sorted: {order:?}");
        // A HEAD of the listing has the GET's length.
        let h = c.request("HEAD", "/files/", &[]);
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("content-length"),
            Some(r.body.len().to_string().as_str())
        );
        // A link from the listing leads to the file.
        let r = c.request("GET", "/files/a%3Cb%3E.txt", &[]);
        assert_eq!(r.body, b"lt gt");
        // The root has no parent link.
        let r = c.request("GET", "/", &[]);
        assert!(!r.body_str().contains(r#"href="../""#));
        let r = c.request("POST", "/files/", &[]);
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let server = Server::start_with(dir.path(), &["--no-listing"]);
    let mut c = Conn::open(server.addr);
    let r = c.request("GET", "/files/", &[]);
    assert_error(&r, 404, E404, "--no-listing /files/");
    let r = c.request("GET", "/", &[]);
    assert_error(&r, 404, E404, "--no-listing /");
    let r = c.request("GET", "/site/", &[]);
    assert_eq!(r.status, 200, "index.html is still served");
    assert_eq!(r.body, b"<h1>home</h1>");
    let r = c.request("GET", "/files/a%20b.txt", &[]);
    assert_eq!(r.body, b"12345");
}

#[test]
fn content_types_from_the_extension() {
    let dir = TempDir::new();
    let cases = [
        ("v.mp4", "video/mp4"),
        ("notes.txt", TXT),
        ("page.html", HTML),
        ("a.json", "application/json"),
        ("img.PNG", "image/png"),
        ("x.tar.gz", "application/gzip"),
        ("song.mp3", "audio/mpeg"),
        ("doc.pdf", "application/pdf"),
        ("m.mkv", "video/x-matroska"),
        ("blob.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ];
    for (name, _) in cases {
        dir.write(name, b"0123456789");
    }
    let server = Server::start(dir.path());
    let mut c = Conn::open(server.addr);
    for (name, ty) in cases {
        let target = format!("/{name}");
        let r = c.request("GET", &target, &[]);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(ty), "{name}");
        // A single-part 206 carries the same type.
        let r = c.request("GET", &target, &[("Range", "bytes=0-1")]);
        assert_eq!(r.status, 206, "{name}");
        assert_eq!(r.header("content-type"), Some(ty), "{name} 206");
        assert_eq!(r.body, b"01");
    }
}

/// Sends `request` and returns the raw response head (up to CRLF CRLF).
fn raw_head(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(head.len() < 64 * 1024, "response head too long");
        let n = s.read(&mut buf).expect("read response head");
        assert!(
            n > 0,
            "closed before the end of the head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    head.truncate(end + 2);
    head
}

#[test]
fn header_values_never_carry_cr_or_lf() {
    let dir = TempDir::new();
    // Names an attacker who can upload files might choose.
    dir.write("f\r\nSet-Cookie: a=b.txt", b"file with CRLF");
    dir.write("d\r\nX-Injected: 1/inner.txt", b"in a folder with CRLF");
    dir.write("lf\nX-Injected: 2.txt", b"bare LF");
    let server = Server::start(dir.path());
    let known = [
        "date",
        "server",
        "content-length",
        "connection",
        "content-type",
        "accept-ranges",
        "etag",
        "last-modified",
        "content-range",
        "location",
        "allow",
        // The folder page's own fields.
        "cache-control",
        "content-security-policy",
        "x-content-type-options",
    ];
    for (target, status) in [
        ("/f%0D%0ASet-Cookie:%20a=b.txt", 200),
        ("/d%0D%0AX-Injected:%201", 301), // Location carries the name
        ("/d%0D%0AX-Injected:%201/", 200),
        ("/d%0D%0AX-Injected:%201/inner.txt", 200),
        ("/lf%0AX-Injected:%202.txt", 200),
        ("/nope%0D%0AX-Injected:%203", 404),
        ("/nope%0D%0AX-Injected:%203/", 404),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let head = raw_head(server.addr, request.as_bytes());
        let text = String::from_utf8(head).expect("head is text");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap();
        assert_eq!(
            status_line.split(' ').nth(1),
            Some(status.to_string().as_str()),
            "{target}: {text:?}"
        );
        for line in lines.filter(|l| !l.is_empty()) {
            assert!(
                !line.contains('\n') && !line.contains('\r'),
                "{target}: bare CR/LF in {line:?}"
            );
            let (name, _) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{target}: not a field line {line:?}"));
            assert!(
                known.contains(&name.to_ascii_lowercase().as_str()),
                "{target}: injected field {line:?}"
            );
        }
        if status == 301 {
            assert!(
                text.contains("\r\nLocation: /d%0D%0AX-Injected%3A%201/\r\n"),
                "{target}: {text:?}"
            );
        }
    }
    // And the listing of the root shows these names as text, links encoded.
    let r = get(server.addr, "/", &[]);
    let page = r.body_str();
    assert!(
        page.contains(r#"href="f%0D%0ASet-Cookie%3A%20a%3Db.txt""#),
        "{page}"
    );
}

#[test]
fn fifo_and_symlink_loop_are_404_without_blocking() {
    let dir = TempDir::new();
    dir.write("ok.txt", b"ok");
    let fifo = dir.path().join("pipe.bin");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    symlink("loop-a", dir.path().join("loop-b")).unwrap();
    symlink("loop-b", dir.path().join("loop-a")).unwrap();
    let server = Server::start_with(dir.path(), &["--threads", "1"]);
    let mut c = Conn::open(server.addr);
    for target in ["/pipe.bin", "/loop-a", "/loop-b/x"] {
        // With one worker, a request blocked on the FIFO would starve the rest.
        let r = c.request("GET", target, &[("Range", "bytes=0-0")]);
        assert_error(&r, 404, E404, target);
    }
    let r = c.request("GET", "/ok.txt", &[]);
    assert_eq!(r.body, b"ok");
    let r = c.request("GET", "/", &[]);
    assert_eq!(r.status, 200, "the listing survives odd entries");
    assert!(r.body_str().contains(r#"href="ok.txt""#));
}
