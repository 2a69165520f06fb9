//! The OpenAPI 3.1 document of the control API, built from the wire types' JSON Schemas so
//! it cannot drift from what the server sends.

use cobox_schema::api;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

fn error_responses(r: &mut SchemaGenerator) -> Value {
    let e = r.subschema_for::<api::ApiError>();
    json!({
        "4XX": {"description": "refused; `code` is stable", "content": {"application/json": {"schema": e}}},
        "5XX": {"description": "failed inside the agent", "content": {"application/json": {"schema": e.clone()}}}
    })
}

fn op(
    g: &mut SchemaGenerator,
    summary: &str,
    request: Option<Value>,
    ok: Value,
    ok_type: &str,
) -> Value {
    let mut responses = error_responses(g);
    responses["200"] = json!({"description": "OK", "content": {ok_type: {"schema": ok}}});
    let mut o = json!({"summary": summary, "responses": responses});
    if let Some(req) = request {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": req}}});
    }
    o
}

macro_rules! schema {
    ($g:expr, $t:ty) => {
        serde_json::to_value($g.subschema_for::<$t>()).expect("schemas serialize")
    };
}

/// The operation objects of the API, one per route of [`super::server::ROUTES`].
pub mod ops {
    use super::*;

    const JSON: &str = "application/json";

    pub fn status(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::Status);
        op(
            g,
            "conditions of every resource, the running generation, the last invalid edit",
            None,
            ok,
            JSON,
        )
    }

    pub fn identity(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::Identity);
        op(g, "the device's public key", None, ok, JSON)
    }

    pub fn generations(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::Generations);
        op(g, "accepted configs, newest first", None, ok, JSON)
    }

    pub fn plan(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::ConfigRequest),
            schema!(g, api::PlanResponse),
        );
        op(
            g,
            "dry run: what applying the config would change now",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn apply(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::ConfigRequest),
            schema!(g, api::ApplyResponse),
        );
        op(
            g,
            "accept the config as the next generation (written to the agent's config file) and reconcile",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn rollback(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::RollbackRequest),
            schema!(g, api::ApplyResponse),
        );
        op(
            g,
            "run an earlier generation's config again, as a new generation",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn sync(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (schema!(g, api::SyncRequest), schema!(g, api::SyncResponse));
        op(
            g,
            "replicate a space or seed now, outside its windows, until it is in step or the time is up",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn remote_apply(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::RemoteApplyRequest),
            schema!(g, api::RemoteApplyResponse),
        );
        op(
            g,
            "publish a managed device's desired config to the fleet, sealed to it and signed by this device (an admin)",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn remote_status(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::RemoteStatusRequest),
            schema!(g, api::RemoteStatusResponse),
        );
        op(
            g,
            "a managed device's newest status report as read from the fleet here, with its age",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn admins_change(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::AdminChangeRequest),
            schema!(g, api::AdminEntryResponse),
        );
        op(
            g,
            "propose a change of the admin set (add, remove, revoke, threshold), signed by this device, and publish it to the fleet",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn admins_sign(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::AdminSignRequest),
            schema!(g, api::AdminEntryResponse),
        );
        op(
            g,
            "co-sign a proposed change of the admin set and publish the signature",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn admins_reset(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::AdminsStatus);
        op(
            g,
            "take the device back from its admins: the authority re-rooted on the running config's [admins] (logged and reported)",
            None,
            ok,
            JSON,
        )
    }

    pub fn versions(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::VersionsRequest),
            schema!(g, api::VersionsResponse),
        );
        op(
            g,
            "every version of a file in a space this device knows, oldest first",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn members(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::MembersRequest),
            schema!(g, api::MembersResponse),
        );
        op(
            g,
            "who takes part in a space: role, in or removed, who admitted and who removed each",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn rotate(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::RotateRequest),
            schema!(g, api::RotateResponse),
        );
        op(
            g,
            "start a new key epoch of a space, sealed to the members in: blocks written from then on stay closed to anyone removed",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn usage(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::UsageRequest),
            schema!(g, api::UsageResponse),
        );
        op(
            g,
            "what a space's content takes on this device, measured now, in total and by top-level entry",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn restore(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::RestoreRequest),
            schema!(g, api::RestoreResponse),
        );
        op(
            g,
            "put back the version of a file newest at a time (a deleted file too)",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn prune_candidates(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::PruneCandidates);
        op(
            g,
            "spaces with data here that the config no longer declares",
            None,
            ok,
            JSON,
        )
    }

    pub fn prune(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::PruneRequest),
            schema!(g, api::PruneCandidates),
        );
        op(
            g,
            "delete the data of these undeclared spaces",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn invite_create(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::InviteRequest),
            schema!(g, api::InviteResponse),
        );
        op(
            g,
            "create an invite code for one device",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn invite_inspect(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::InviteInspectRequest),
            schema!(g, api::InviteInfo),
        );
        op(
            g,
            "what an invite code grants this device",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn keys_export(g: &mut SchemaGenerator) -> Value {
        let (req, ok) = (
            schema!(g, api::KeyExportRequest),
            schema!(g, api::KeyExportResponse),
        );
        op(
            g,
            "paper keys (secret): only with `confirm: true`",
            Some(req),
            ok,
            JSON,
        )
    }

    pub fn events(g: &mut SchemaGenerator) -> Value {
        let ok = schema!(g, api::Event);
        let mut o = op(
            g,
            "server-sent events: `id` is the event id, `data` an Event as JSON",
            None,
            ok,
            "text/event-stream",
        );
        o["parameters"] = json!([
            {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "only events with a greater id"},
            {"name": "follow", "in": "query", "schema": {"type": "boolean"}, "description": "keep streaming new events"}
        ]);
        o
    }

    pub fn openapi(g: &mut SchemaGenerator) -> Value {
        op(g, "this document", None, json!({"type": "object"}), JSON)
    }
}

/// The document served at `/v1/openapi.json`: every route of the one route table.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let mut paths = serde_json::Map::new();
    for r in super::server::ROUTES {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = (r.doc)(&mut g);
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "coboxd control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "HTTP/JSON on the agent's unix socket (mode 0600). Errors are ApiError objects with a stable code."
        },
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::server::ROUTES;

    /// Every `$ref` in `v` points at a schema the document defines.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_lists_exactly_the_served_routes_and_resolves_every_reference() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not defined"
            );
        }
    }
}
