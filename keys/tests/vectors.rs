//! Committed test vectors: derivation, discovery keys, block encryption (both formats),
//! roster removals, invites, paper keys, admin authority entries, config envelopes. A derivation or format can never drift
//! silently: any change fails here.
//!
//! `COBOX_WRITE_VECTORS=1 cargo test -p cobox-keys --test vectors` rewrites the file; only
//! do that for a deliberate, versioned format change.

use cobox_keys::authority::{Authority, Change, Entry};
use cobox_keys::block::BlockKey;
use cobox_keys::derive::{discovery_key, feed, feed_seed, identity, identity_seed};
use cobox_keys::envelope::{Envelope, Header};
use cobox_keys::invite::{self, Invite, Role};
use cobox_keys::secret::{hex, unhex};
use cobox_keys::{Secret32, paper, roster};
use cobox_schema::hexkey::Address;
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors.json");

fn secret(v: &Value) -> Secret32 {
    Secret32::from_slice(&unhex(v.as_str().unwrap()).unwrap()).unwrap()
}

fn bytes32(v: &Value) -> [u8; 32] {
    unhex(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

/// The inputs, fixed forever.
fn parents() -> Vec<Secret32> {
    vec![
        Secret32::from_bytes([0; 32]),
        Secret32::from_bytes(*b"cobox test vector parent key 001"),
    ]
}

fn addresses() -> Vec<Address> {
    vec![
        Address([0x11; 32]),
        Address(*b"cobox test vector space address!"),
    ]
}

fn generate() -> Value {
    let derivation: Vec<Value> = parents()
        .iter()
        .map(|p| {
            let feeds: Vec<Value> = addresses()
                .iter()
                .flat_map(|a| (0..2u32).map(move |n| (a, n)))
                .map(|(a, n)| {
                    json!({"address": a.to_string(), "feed": n, "seed": hex(feed_seed(p, a, n).expose()), "public": feed(p, a, n).public.to_string()})
                })
                .collect();
            json!({"parent": hex(p.expose()), "identity_seed": hex(identity_seed(p).expose()), "identity": identity(p).public.to_string(), "feeds": feeds})
        })
        .collect();
    let discovery: Vec<Value> = addresses()
        .iter()
        .map(|a| json!({"key": a.to_string(), "discovery_key": hex(&discovery_key(&a.0))}))
        .collect();
    let space_key = Secret32::from_bytes([0x42; 32]);
    let block_key = BlockKey::for_space(&space_key);
    let block = vec![json!({
        "space_key": hex(space_key.expose()),
        "feed": hex(&[0x24; 32]),
        "index": 7,
        "nonce": hex(&[0x99; 24]),
        "plain": hex(b"cobox block vector"),
        "sealed": hex(&block_key.seal_with_nonce(&[0x24; 32], 7, b"cobox block vector", [0x99; 24])),
    })];
    let block_epoch = vec![json!({
        "space_key": hex(space_key.expose()),
        "epoch": 3,
        "feed": hex(&[0x24; 32]),
        "index": 7,
        "nonce": hex(&[0x99; 24]),
        "plain": hex(b"cobox block vector"),
        "sealed": hex(&block_key.seal_in_with_nonce(3, &[0x24; 32], 7, b"cobox block vector", [0x99; 24])),
    })];
    let (remover, removed) = (identity(&parents()[1]), identity(&parents()[0]));
    let roster_removal = vec![json!({
        "address": addresses()[1].to_string(),
        "remover_parent": hex(parents()[1].expose()),
        "removed": removed.public.to_string(),
        "statements": hex(&roster::encode_all(&[
            roster::Statement::remove(&remover, &addresses()[1].0, removed.public.0),
            roster::Statement::readmit(&remover, &addresses()[1].0, roster::Role::Member, removed.public.0, remover.public.0),
        ])),
    })];
    let (inviter, invitee) = (&parents()[1], &parents()[0]);
    let inv = Invite {
        space_name: "accounts".into(),
        address: addresses()[1],
        encryption_key: Some(space_key.clone()),
        role: Role::Member,
        expires: None,
        inviter: identity(inviter).public,
        invitee: identity(invitee).public,
    };
    let invite = vec![json!({
        "inviter_parent": hex(inviter.expose()),
        "invitee_parent": hex(invitee.expose()),
        "space_name": inv.space_name,
        "address": inv.address.to_string(),
        "encryption_key": hex(space_key.expose()),
        "signed_payload": hex(&inv.signed_payload(&identity(inviter)).unwrap()),
        "code": inv.create(&identity(inviter)).unwrap(),
    })];
    let paper: Vec<Value> = parents()
        .iter()
        .map(|p| json!({"secret": hex(p.expose()), "words": paper::to_words(p).join(" ")}))
        .collect();
    let admins = [identity(&parents()[0]), identity(&parents()[1])];
    let genesis = Authority::genesis(admins.iter().map(|a| a.public.0).collect(), 1).unwrap();
    let entry = Entry::new(genesis.head, Change::Add([0x33; 32]), &admins[1]);
    let authority = vec![json!({
        "admin_parents": [hex(parents()[0].expose()), hex(parents()[1].expose())],
        "threshold": 1,
        "genesis": hex(&genesis.head),
        "entry": hex(&entry.encode()),
        "entry_digest": hex(&entry.digest()),
    })];
    let sealed = Envelope::seal(
        Header {
            fleet: addresses()[1].0,
            target: identity(&parents()[0]).public.0,
            generation: 2,
            parent: [0x44; 32],
            authority: genesis.head,
        },
        "version = 1\n",
        &admins[1],
    )
    .unwrap();
    let envelope = vec![json!({
        "signer_parent": hex(parents()[1].expose()),
        "target_parent": hex(parents()[0].expose()),
        "fleet": addresses()[1].to_string(),
        "generation": 2,
        "parent": hex(&[0x44; 32]),
        "authority": hex(&genesis.head),
        "text": "version = 1\n",
        "envelope": hex(&sealed.encode()),
        "digest": hex(&sealed.digest()),
    })];
    json!({"derivation": derivation, "discovery": discovery, "block": block, "block_epoch": block_epoch, "roster_removal": roster_removal, "invite": invite, "paper": paper, "authority": authority, "envelope": envelope})
}

#[test]
fn vectors_match() {
    if std::env::var_os("COBOX_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();

    for d in v["derivation"].as_array().unwrap() {
        let p = secret(&d["parent"]);
        assert_eq!(hex(identity_seed(&p).expose()), d["identity_seed"]);
        assert_eq!(identity(&p).public.to_string(), d["identity"]);
        for f in d["feeds"].as_array().unwrap() {
            let a = Address(bytes32(&f["address"]));
            let n = f["feed"].as_u64().unwrap() as u32;
            assert_eq!(hex(feed_seed(&p, &a, n).expose()), f["seed"]);
            assert_eq!(feed(&p, &a, n).public.to_string(), f["public"]);
        }
    }
    for d in v["discovery"].as_array().unwrap() {
        assert_eq!(hex(&discovery_key(&bytes32(&d["key"]))), d["discovery_key"]);
    }
    // Format 1 has no epoch; format 2 carries one.
    let blocks = v["block"].as_array().unwrap().iter().map(|b| (b, None));
    let with_epochs = v["block_epoch"].as_array().unwrap().iter();
    for (b, epoch) in blocks.chain(with_epochs.map(|b| (b, b["epoch"].as_u64()))) {
        let key = BlockKey::for_space(&secret(&b["space_key"]));
        let feed_key = bytes32(&b["feed"]);
        let index = b["index"].as_u64().unwrap();
        let nonce: [u8; 24] = unhex(b["nonce"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let plain = unhex(b["plain"].as_str().unwrap()).unwrap();
        let sealed = unhex(b["sealed"].as_str().unwrap()).unwrap();
        let again = match epoch {
            None => key.seal_with_nonce(&feed_key, index, &plain, nonce),
            Some(e) => key.seal_in_with_nonce(e as u32, &feed_key, index, &plain, nonce),
        };
        assert_eq!(again, sealed);
        assert_eq!(
            cobox_keys::block::epoch_of(&sealed),
            Ok(epoch.unwrap_or(0) as u32)
        );
        assert_eq!(key.open(&feed_key, index, &sealed).unwrap(), plain);
    }
    for r in v["roster_removal"].as_array().unwrap() {
        let address = Address(bytes32(&r["address"]));
        let remover = identity(&secret(&r["remover_parent"]));
        let removed = bytes32(&r["removed"]);
        let bytes = unhex(r["statements"].as_str().unwrap()).unwrap();
        let statements = roster::decode_all(&bytes).unwrap();
        assert_eq!(
            statements,
            vec![
                roster::Statement::remove(&remover, &address.0, removed),
                roster::Statement::readmit(
                    &remover,
                    &address.0,
                    roster::Role::Member,
                    removed,
                    remover.public.0
                ),
            ]
        );
        assert!(statements.iter().all(|s| s.verifies(&address.0)));
    }
    for i in v["invite"].as_array().unwrap() {
        let inviter = identity(&secret(&i["inviter_parent"]));
        let invitee = identity(&secret(&i["invitee_parent"]));
        let opened = invite::open(i["code"].as_str().unwrap(), &invitee, 0).unwrap();
        assert_eq!(opened.space_name, i["space_name"]);
        assert_eq!(opened.address.to_string(), i["address"]);
        assert_eq!(
            hex(opened.encryption_key.as_ref().unwrap().expose()),
            i["encryption_key"]
        );
        assert_eq!(opened.inviter, inviter.public);
        assert_eq!(opened.invitee, invitee.public);
        assert_eq!(
            hex(&opened.signed_payload(&inviter).unwrap()),
            i["signed_payload"]
        );
        let reparsed =
            invite::parse_signed(&unhex(i["signed_payload"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(reparsed, opened);
    }
    for a in v["authority"].as_array().unwrap() {
        let admins: std::collections::BTreeSet<[u8; 32]> = a["admin_parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| identity(&secret(p)).public.0)
            .collect();
        let genesis = Authority::genesis(admins, a["threshold"].as_u64().unwrap() as u8).unwrap();
        assert_eq!(hex(&genesis.head), a["genesis"]);
        let bytes = unhex(a["entry"].as_str().unwrap()).unwrap();
        let entry = Entry::decode(&bytes).unwrap();
        assert_eq!(entry.encode(), bytes);
        assert_eq!(hex(&entry.digest()), a["entry_digest"]);
        let after = genesis.follow([entry]);
        assert_eq!(
            hex(&after.head),
            a["entry_digest"],
            "the entry verifies and applies"
        );
    }
    for e in v["envelope"].as_array().unwrap() {
        let bytes = unhex(e["envelope"].as_str().unwrap()).unwrap();
        let env = Envelope::decode(&bytes).unwrap();
        assert_eq!(env.encode(), bytes);
        assert!(env.verifies(), "the signature verifies");
        assert_eq!(hex(&env.digest()), e["digest"]);
        assert_eq!(env.signer, identity(&secret(&e["signer_parent"])).public.0);
        let target = identity(&secret(&e["target_parent"]));
        assert_eq!(env.target, target.public.0);
        assert_eq!(env.fleet, bytes32(&e["fleet"]));
        assert_eq!(env.generation, e["generation"].as_u64().unwrap());
        assert_eq!(env.parent, bytes32(&e["parent"]));
        assert_eq!(env.authority, bytes32(&e["authority"]));
        assert_eq!(env.open(&target).unwrap(), e["text"].as_str().unwrap());
    }
    for p in v["paper"].as_array().unwrap() {
        let s = secret(&p["secret"]);
        assert_eq!(paper::to_words(&s).join(" "), p["words"]);
        assert_eq!(paper::from_words(p["words"].as_str().unwrap()).unwrap(), s);
    }
}
