//! `onepages-canned`: the reference ceiling of `benches/ceiling.sh`. An LDAP server that reads
//! only each request's envelope (message ID and operation) and answers every bind with
//! success and every search with one canned entry and a success result — no directory, no
//! filter, no rights. What ONE Pages reaches against it on the same machine, load generator
//! and connections shows how close it is to the cost of the sockets themselves.
//!
//! ```text
//! onepages-canned --listen 127.0.0.1:13999
//! ```
//! Loopback only unless told otherwise; it holds no data.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// `tag length content` with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

fn message(id: &[u8], op: &[u8]) -> Vec<u8> {
    tlv(0x30, &[tlv(0x02, id), op.to_vec()].concat())
}

/// `resultCode 0, matchedDN "", diagnosticMessage ""` under the given application tag.
fn success(tag: u8) -> Vec<u8> {
    tlv(
        tag,
        &[tlv(0x0a, &[0]), tlv(0x04, b""), tlv(0x04, b"")].concat(),
    )
}

/// The one entry every search returns (what a mail look-up returns: cn, mail, o).
fn entry() -> Vec<u8> {
    let attr = |name: &str, value: &str| {
        tlv(
            0x30,
            &[
                tlv(0x04, name.as_bytes()),
                tlv(0x31, &tlv(0x04, value.as_bytes())),
            ]
            .concat(),
        )
    };
    let attrs = [
        attr("cn", "Dewey Rahim"),
        attr("mail", "dewey.rahim@one-mail.on.ca"),
        attr("o", "Hamilton Health Sciences"),
    ]
    .concat();
    tlv(
        0x64,
        &[
            tlv(
                0x04,
                b"uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca",
            ),
            tlv(0x30, &attrs),
        ]
        .concat(),
    )
}

/// Reads one BER length; `None` at a malformed or oversized one.
async fn length<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Option<usize>> {
    let first = r.read_u8().await?;
    if first < 0x80 {
        return Ok(Some(usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 3 {
        return Ok(None);
    }
    let mut len = 0usize;
    for _ in 0..n {
        len = (len << 8) | usize::from(r.read_u8().await?);
    }
    Ok((len <= 1 << 20).then_some(len))
}

async fn serve(stream: TcpStream, entry: &[u8]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let mut body = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        if rd.read_u8().await? != 0x30 {
            return Ok(());
        }
        let Some(len) = length(&mut rd).await? else {
            return Ok(());
        };
        body.resize(len, 0);
        rd.read_exact(&mut body).await?;
        // messageID: INTEGER (tag 2, short length), then the operation's tag.
        let (Some(&2), Some(&id_len)) = (body.first(), body.get(1)) else {
            return Ok(());
        };
        let id_end = 2 + usize::from(id_len);
        let (Some(id), Some(&op)) = (body.get(2..id_end), body.get(id_end)) else {
            return Ok(());
        };
        out.clear();
        match op {
            0x60 => out.extend(message(id, &success(0x61))),
            0x63 => {
                out.extend(message(id, entry));
                out.extend(message(id, &success(0x65)));
            }
            0x42 => return Ok(()),
            0x50 => continue, // abandon: no answer
            other => {
                // Every other request gets the success of its response tag (request + 1).
                out.extend(message(id, &success(other.wrapping_add(1))));
            }
        }
        wr.write_all(&out).await?;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 13999).into();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                let v = args.next().unwrap_or_default();
                listen = v.parse().map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("--listen {v}: {e}"),
                    )
                })?;
            }
            _ => {
                eprintln!("usage: onepages-canned [--listen HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(listen).await?;
    eprintln!("onepages-canned on ldap://{}", listener.local_addr()?);
    let entry: &'static [u8] = Box::leak(entry().into_boxed_slice());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve(stream, entry).await;
        });
    }
}
