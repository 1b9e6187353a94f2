//! Access decisions: who a session is, what that identity may do now, and the capability that
//! lets it write.
//!
//! A bind fixes an [`Identity`] (the entry, by id, that proved its password). The rights it
//! carries are decided at every operation from the directory as it is ([`Dsa::grant`]): an
//! account that was disabled, deleted or demoted since the bind loses them at its next
//! operation, on every connection; a disabled or deleted identity is anonymous. The decision is
//! cached per session until a write changes or removes an existing entry (`auth_epoch`), so
//! type-ahead searches do not pay for it.
//!
//! Roles: `admin` (an entry with `onePagesRole: admin`, or a DN in the configuration's
//! `admins`), `user` (a person: may change its own password, and its own attributes listed in
//! `self_service_attributes`), `reader` (any other account, such as a mail gateway's: reads
//! only). Writing needs a [`WriteGrant`], which only [`Grant::write`] and
//! [`Dsa::operator_grant`] make; [`super::Writer`] takes one and enforces its scope.

use std::sync::Arc;

use super::Dsa;
use crate::directory::entry::{AttrSource, Entry, EntryId};
use crate::directory::values::status_is_active;

/// Who a session bound as. Fixed by a bind; what it may do is decided per operation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Identity {
    /// Not bound, or bound anonymously / unauthenticated (RFC 4513 §5.1).
    #[default]
    Anonymous,
    /// The entry that proved its password, by id (ids are never reused: an entry deleted and
    /// added again under the same DN is another identity).
    Bound { id: EntryId, dn: String },
}

impl Identity {
    pub fn is_bound(&self) -> bool {
        matches!(self, Identity::Bound { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Reader,
    User,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug)]
struct Principal {
    id: EntryId,
    dn: String,
    ndn: String,
    role: Role,
}

/// What an identity may do, decided against the directory as it is now.
#[derive(Clone, Debug)]
pub struct Grant {
    principal: Option<Arc<Principal>>,
    anonymous_read: bool,
    self_service: Arc<[String]>,
}

/// Why a grant does not reach a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Not authenticated: binding would help (strongerAuthRequired).
    NotBound(String),
    /// Authenticated, but the role does not allow it (insufficientAccessRights).
    NotAllowed(String),
}

/// Only directory administrators change entries: the refusal every other role gets.
pub const ADMINS_ONLY: &str = "only directory administrators may change entries";

impl Grant {
    pub fn role(&self) -> Option<Role> {
        self.principal.as_ref().map(|p| p.role)
    }

    pub fn is_authenticated(&self) -> bool {
        self.principal.is_some()
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Some(Role::Admin)
    }

    /// The DN of the bound entry as it is now (empty for anonymous).
    pub fn dn(&self) -> &str {
        self.principal.as_ref().map_or("", |p| p.dn.as_str())
    }

    /// The normalised DN of the bound entry (empty for anonymous).
    pub fn ndn(&self) -> &str {
        self.principal.as_ref().map_or("", |p| p.ndn.as_str())
    }

    /// The id of the bound entry.
    pub fn entry_id(&self) -> Option<EntryId> {
        self.principal.as_ref().map(|p| p.id)
    }

    /// The authorization identity of RFC 4532 (`dn:...`, or empty for anonymous).
    pub fn authz_id(&self) -> String {
        match &self.principal {
            Some(p) => format!("dn:{}", p.dn),
            None => String::new(),
        }
    }

    /// May this identity read directory entries at all? Everyone bound may; anonymous
    /// sessions only when the operator allows anonymous reading.
    pub fn may_read(&self) -> bool {
        self.principal.is_some() || self.anonymous_read
    }

    /// The right to write that this grant carries: everything for an administrator, the
    /// account's own password (and configured self-service attributes) for a user.
    pub fn write(&self) -> Result<WriteGrant, Denied> {
        let Some(p) = &self.principal else {
            return Err(Denied::NotBound(
                "bind as a directory administrator to change entries".into(),
            ));
        };
        let scope = match p.role {
            Role::Admin => WriteScope::Admin,
            Role::User => WriteScope::SelfService {
                id: p.id,
                attrs: Arc::clone(&self.self_service),
            },
            Role::Reader => return Err(Denied::NotAllowed(ADMINS_ONLY.into())),
        };
        Ok(WriteGrant {
            by: p.dn.clone(),
            scope,
        })
    }
}

/// The capability to write: [`super::Writer`] exists only for one, and checks every change
/// against its scope. Made only by [`Grant::write`] and [`Dsa::operator_grant`].
#[derive(Clone, Debug)]
pub struct WriteGrant {
    /// The writer's DN, recorded in `creatorsName` / `modifiersName` (empty offline).
    by: String,
    scope: WriteScope,
}

#[derive(Clone, Debug)]
pub(super) enum WriteScope {
    /// An offline command's operator (holds the data directory's lock).
    Operator,
    Admin,
    /// A person changing its own entry: its password, and these attributes.
    SelfService {
        id: EntryId,
        attrs: Arc<[String]>,
    },
}

impl WriteGrant {
    /// The writer's DN (empty for an offline operator).
    pub fn by(&self) -> &str {
        &self.by
    }

    pub(super) fn scope(&self) -> &WriteScope {
        &self.scope
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.scope, WriteScope::Operator)
    }

    /// Whether this grant may act on other people's accounts (unlock them).
    pub fn may_administer(&self) -> bool {
        matches!(self.scope, WriteScope::Operator | WriteScope::Admin)
    }
}

/// A session's last decision, reused while nothing that could change it was written.
#[derive(Debug, Default)]
pub struct GrantCache {
    last: Option<(u64, Identity, Grant)>,
}

impl GrantCache {
    /// Takes the decision a bind made from the entry it read.
    pub fn seed(&mut self, seed: GrantSeed) {
        self.last = Some((seed.epoch, seed.identity, seed.grant));
    }
}

/// A decision made from the entry a bind just read, valid while the epoch read before that
/// read has not moved (a write in between only makes the next operation decide again).
#[derive(Debug)]
pub struct GrantSeed {
    epoch: u64,
    identity: Identity,
    grant: Grant,
}

impl Dsa {
    /// What `who` may do now. `cache` is the session's: the decision is reused until a write
    /// changes or removes an existing entry.
    pub fn grant(&self, who: &Identity, cache: &mut GrantCache) -> Grant {
        let epoch = self.auth_epoch();
        if let Some((e, id, g)) = &cache.last {
            if *e == epoch && id == who {
                return g.clone();
            }
        }
        let grant = self.decide(who);
        cache.last = Some((epoch, who.clone(), grant.clone()));
        grant
    }

    fn anonymous(&self) -> Grant {
        Grant {
            principal: None,
            anonymous_read: self.settings.anonymous_read,
            self_service: Arc::clone(&self.settings.self_service_attributes),
        }
    }

    /// The epoch a bind reads before it looks its entry up (see [`Dsa::seed_grant`]).
    pub fn grant_epoch(&self) -> u64 {
        self.auth_epoch()
    }

    /// The decision for `who`, made from the entry a bind read after `epoch` was taken.
    pub fn seed_grant(&self, epoch: u64, who: &Identity, entry: &Entry) -> GrantSeed {
        let grant = match who {
            Identity::Anonymous => self.anonymous(),
            Identity::Bound { id, .. } => {
                match self.principal_of(*id, &entry.dn, &entry.ndn, entry) {
                    Some(p) => Grant {
                        principal: Some(Arc::new(p)),
                        ..self.anonymous()
                    },
                    None => self.anonymous(),
                }
            }
        };
        GrantSeed {
            epoch,
            identity: who.clone(),
            grant,
        }
    }

    /// Who an entry's account is, or `None` when it has no rights (disabled).
    fn principal_of<E: AttrSource + ?Sized>(
        &self,
        id: EntryId,
        dn: &str,
        ndn: &str,
        entry: &E,
    ) -> Option<Principal> {
        if is_disabled(entry) {
            return None;
        }
        Some(Principal {
            id,
            dn: dn.to_string(),
            ndn: ndn.to_string(),
            role: self.role_of(ndn, entry),
        })
    }

    fn decide(&self, who: &Identity) -> Grant {
        let Identity::Bound { id, .. } = who else {
            return self.anonymous();
        };
        let decided = self
            .reader()
            .with_view(*id, |view| self.principal_of(*id, view.dn, view.ndn, view));
        match decided {
            Ok(Some(Some(p))) => Grant {
                principal: Some(Arc::new(p)),
                ..self.anonymous()
            },
            // Deleted or disabled: anonymous.
            Ok(_) => self.anonymous(),
            Err(e) => {
                // Fail closed: a store fault must not keep rights alive.
                tracing::warn!(error = %e, "cannot read the bound entry; treating as anonymous");
                self.anonymous()
            }
        }
    }

    /// The role an entry's account has.
    pub fn role_of<E: AttrSource + ?Sized>(&self, ndn: &str, entry: &E) -> Role {
        if self.is_configured_admin(ndn) || entry.has_text_ci("onePagesRole", "admin") {
            Role::Admin
        } else if entry.has_text_ci("onePagesRole", "reader") || !is_person(entry) {
            Role::Reader
        } else {
            Role::User
        }
    }

    /// The server's own capability for its housekeeping (purging expired tombstones): it
    /// reaches no entry, only the trash.
    pub(super) fn housekeeping_grant(&self) -> WriteGrant {
        WriteGrant {
            by: String::new(),
            scope: WriteScope::Operator,
        }
    }

    /// The server's own capability for the dormant-account rules (`dormant_policy = apply`,
    /// run by `server.rs` only): changes are recorded with no modifier's name.
    pub fn policy_grant(&self) -> WriteGrant {
        WriteGrant {
            by: String::new(),
            scope: WriteScope::Operator,
        }
    }

    /// The offline operator's capability: granted while no network client can reach this
    /// process (an offline command holding the data directory's lock), never once serving.
    pub fn operator_grant(&self) -> Result<WriteGrant, super::DsaError> {
        if self.offline.load(std::sync::atomic::Ordering::Acquire) {
            Ok(WriteGrant {
                by: String::new(),
                scope: WriteScope::Operator,
            })
        } else {
            Err(super::DsaError::Denied(
                "the directory is being served: change it through the server".into(),
            ))
        }
    }
}

/// A disabled account has no rights and cannot bind. Any status but `active` counts (see
/// [`status_is_active`]); no status at all is active.
pub fn is_disabled<E: AttrSource + ?Sized>(entry: &E) -> bool {
    entry
        .values_of("onePagesStatus")
        .any(|v| !status_is_active(v))
}

/// A person on the service (not a service account).
fn is_person<E: AttrSource + ?Sized>(entry: &E) -> bool {
    entry.has_text_ci("objectClass", "person")
        && !entry.has_text_ci("objectClass", "onePagesService")
        && !entry.has_text_ci("onePagesAccountType", "service")
}
