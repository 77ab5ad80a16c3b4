//! Roles (the Lytics "scopes") and the one role→permission matrix of authd.
//!
//! Every authorization decision in authd is "does the caller's [`RoleSet`] grant this
//! [`Permission`]?", answered by [`RoleSet::permissions`] from the table in
//! [`Role::permissions`]. The table is derived from the role descriptions in the Lytics seed;
//! changing who may do what means changing this file and its table-driven test.

use std::fmt;

/// A Lytics role slug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Role {
    /// Manages the account (users, roles) and holds every other role.
    Admin = 0,
    /// Data management API read/write (uploads, entity reads, content recommendation); reads segments.
    Data,
    /// Write access to the data upload API.
    DataWrite,
    /// Content classification and topics.
    ContentManager,
    /// Segments read/write.
    SegmentManager,
    /// Segments and campaigns read/write; cannot publish campaigns or export segments.
    Marketer,
    /// Reads segments and campaigns.
    Observer,
    /// Schemas, queries, users (read), content and integrations; PII access.
    DataManager,
    /// Campaigns and segments, including export and publish.
    CampaignManager,
    /// All product features; not users or account; PII access.
    GeneralManager,
}

impl Role {
    /// Every role, in slug order of the seed.
    pub const ALL: [Role; 10] = [
        Role::Admin,
        Role::Data,
        Role::DataWrite,
        Role::ContentManager,
        Role::SegmentManager,
        Role::Marketer,
        Role::Observer,
        Role::DataManager,
        Role::CampaignManager,
        Role::GeneralManager,
    ];

    /// The wire slug.
    pub const fn slug(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Data => "data",
            Role::DataWrite => "data_write",
            Role::ContentManager => "content_manager",
            Role::SegmentManager => "segment_manager",
            Role::Marketer => "marketer",
            Role::Observer => "observer",
            Role::DataManager => "data_manager",
            Role::CampaignManager => "campaign_manager",
            Role::GeneralManager => "general_manager",
        }
    }

    /// Looks a slug up; exact, case-sensitive.
    pub fn from_slug(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.slug() == s)
    }

    /// THE matrix: what each role grants.
    pub const fn permissions(self) -> PermissionSet {
        use Permission as P;
        // Every role may read its own account and the provider catalog.
        let base = PermissionSet::of(&[P::AccountRead, P::ProvidersRead]);
        match self {
            Role::Admin => PermissionSet::ALL,
            Role::Data => base.with(&[
                P::DataUpload,
                P::EntityRead,
                P::ContentRead,
                P::SegmentsRead,
            ]),
            Role::DataWrite => base.with(&[P::DataUpload]),
            Role::ContentManager => base.with(&[P::ContentRead, P::ContentWrite]),
            Role::SegmentManager => base.with(&[P::SegmentsRead, P::SegmentsWrite]),
            Role::Marketer => base.with(&[
                P::SegmentsRead,
                P::SegmentsWrite,
                P::CampaignsRead,
                P::CampaignsWrite,
            ]),
            Role::Observer => base.with(&[P::SegmentsRead, P::CampaignsRead]),
            Role::DataManager => base.with(&[
                P::SchemaRead,
                P::SchemaWrite,
                P::QueriesRead,
                P::QueriesWrite,
                P::UsersRead,
                P::ContentRead,
                P::ContentWrite,
                P::AuthsRead,
                P::AuthsWrite,
                P::TokensCreate,
                P::TokenIntrospect,
                P::ProvidersWrite,
                P::WorksRead,
                P::WorksWrite,
                P::SettingsRead,
                P::SettingsWrite,
                P::EntityRead,
                P::PiiRead,
            ]),
            Role::CampaignManager => base.with(&[
                P::CampaignsRead,
                P::CampaignsWrite,
                P::CampaignsPublish,
                P::SegmentsRead,
                P::SegmentsWrite,
                P::SegmentsExport,
            ]),
            Role::GeneralManager => base.with(&[
                P::SchemaRead,
                P::SchemaWrite,
                P::QueriesRead,
                P::QueriesWrite,
                P::ContentRead,
                P::ContentWrite,
                P::SegmentsRead,
                P::SegmentsWrite,
                P::SegmentsExport,
                P::CampaignsRead,
                P::CampaignsWrite,
                P::CampaignsPublish,
                P::AuthsRead,
                P::AuthsWrite,
                P::TokensCreate,
                P::TokenIntrospect,
                P::WorksRead,
                P::WorksWrite,
                P::SettingsRead,
                P::EntityRead,
                P::PiiRead,
            ]),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// Something a request may need to be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Permission {
    /// Read the caller's own account.
    AccountRead = 0,
    /// Manage the account itself.
    AccountManage,
    /// List and read users.
    UsersRead,
    /// Create, update, delete users and grant roles.
    UsersManage,
    /// List and read auths (tokens and integration credentials), public fields only.
    AuthsRead,
    /// Create/update/delete integration credentials; revoke tokens.
    AuthsWrite,
    /// Mint API tokens (only with roles the caller holds).
    TokensCreate,
    /// Ask authd about another token.
    TokenIntrospect,
    /// Read the provider catalog.
    ProvidersRead,
    /// Add custom providers.
    ProvidersWrite,
    /// Read works (imports/exports).
    WorksRead,
    /// Create and stop works.
    WorksWrite,
    /// Read account settings.
    SettingsRead,
    /// Change account settings.
    SettingsWrite,
    /// Upload data (collect API).
    DataUpload,
    /// Read entities (user profiles).
    EntityRead,
    /// See fields marked PII in entity reads.
    PiiRead,
    /// Read content and topics.
    ContentRead,
    /// Write content classification and topics.
    ContentWrite,
    /// Read segments.
    SegmentsRead,
    /// Write segments.
    SegmentsWrite,
    /// Export segments.
    SegmentsExport,
    /// Read campaigns.
    CampaignsRead,
    /// Write campaigns.
    CampaignsWrite,
    /// Publish campaigns.
    CampaignsPublish,
    /// Read schemas.
    SchemaRead,
    /// Write schemas.
    SchemaWrite,
    /// Read queries.
    QueriesRead,
    /// Write queries.
    QueriesWrite,
    /// Read the audit trail.
    AuditRead,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 30] = [
        Permission::AccountRead,
        Permission::AccountManage,
        Permission::UsersRead,
        Permission::UsersManage,
        Permission::AuthsRead,
        Permission::AuthsWrite,
        Permission::TokensCreate,
        Permission::TokenIntrospect,
        Permission::ProvidersRead,
        Permission::ProvidersWrite,
        Permission::WorksRead,
        Permission::WorksWrite,
        Permission::SettingsRead,
        Permission::SettingsWrite,
        Permission::DataUpload,
        Permission::EntityRead,
        Permission::PiiRead,
        Permission::ContentRead,
        Permission::ContentWrite,
        Permission::SegmentsRead,
        Permission::SegmentsWrite,
        Permission::SegmentsExport,
        Permission::CampaignsRead,
        Permission::CampaignsWrite,
        Permission::CampaignsPublish,
        Permission::SchemaRead,
        Permission::SchemaWrite,
        Permission::QueriesRead,
        Permission::QueriesWrite,
        Permission::AuditRead,
    ];

    /// Stable name, used in error messages and introspection (`integrations.write` style).
    pub const fn name(self) -> &'static str {
        use Permission as P;
        match self {
            P::AccountRead => "account.read",
            P::AccountManage => "account.manage",
            P::UsersRead => "users.read",
            P::UsersManage => "users.manage",
            P::AuthsRead => "auths.read",
            P::AuthsWrite => "auths.write",
            P::TokensCreate => "tokens.create",
            P::TokenIntrospect => "tokens.introspect",
            P::ProvidersRead => "providers.read",
            P::ProvidersWrite => "providers.write",
            P::WorksRead => "works.read",
            P::WorksWrite => "works.write",
            P::SettingsRead => "settings.read",
            P::SettingsWrite => "settings.write",
            P::DataUpload => "data.upload",
            P::EntityRead => "entity.read",
            P::PiiRead => "entity.pii",
            P::ContentRead => "content.read",
            P::ContentWrite => "content.write",
            P::SegmentsRead => "segments.read",
            P::SegmentsWrite => "segments.write",
            P::SegmentsExport => "segments.export",
            P::CampaignsRead => "campaigns.read",
            P::CampaignsWrite => "campaigns.write",
            P::CampaignsPublish => "campaigns.publish",
            P::SchemaRead => "schema.read",
            P::SchemaWrite => "schema.write",
            P::QueriesRead => "queries.read",
            P::QueriesWrite => "queries.write",
            P::AuditRead => "audit.read",
        }
    }

    const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// A set of permissions (a bit set; copying it is free).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// Every permission.
    pub const ALL: PermissionSet = PermissionSet((1u64 << Permission::ALL.len()) - 1);

    /// The set of the listed permissions.
    pub const fn of(ps: &[Permission]) -> Self {
        Self(0).with(ps)
    }

    /// This set plus the listed permissions.
    pub const fn with(self, ps: &[Permission]) -> Self {
        let mut bits = self.0;
        let mut i = 0;
        while i < ps.len() {
            bits |= ps[i].bit();
            i += 1;
        }
        Self(bits)
    }

    /// Union.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `p` is in the set.
    pub const fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// The permissions in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

/// A set of roles (the scopes of a token or the roles of a user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct RoleSet(u16);

impl RoleSet {
    /// No roles.
    pub const EMPTY: RoleSet = RoleSet(0);

    /// The set holding `roles`.
    pub fn of(roles: &[Role]) -> Self {
        roles.iter().fold(Self::EMPTY, |s, r| s.with(*r))
    }

    /// This set plus `r`.
    pub const fn with(self, r: Role) -> Self {
        Self(self.0 | (1 << r as u8))
    }

    /// Whether `r` is in the set.
    pub const fn contains(self, r: Role) -> bool {
        self.0 & (1 << r as u8) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bits, for storage.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// From stored bits; unknown bits are dropped.
    pub const fn from_bits(bits: u16) -> Self {
        Self(bits & ((1 << Role::ALL.len()) - 1))
    }

    /// The roles in the set, in seed order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The slugs in the set.
    pub fn slugs(self) -> Vec<&'static str> {
        self.iter().map(Role::slug).collect()
    }

    /// Everything these roles grant together.
    pub fn permissions(self) -> PermissionSet {
        self.iter().fold(PermissionSet::default(), |acc, r| {
            acc.union(r.permissions())
        })
    }

    /// THE delegation rule: the roles of `target` that a holder of `self` does not hold, so
    /// may neither grant (mint), nor take over (rotate), nor take away (delete/revoke). Admin
    /// holds every role; anyone else only its own. Empty means "allowed".
    pub fn not_delegable(self, target: RoleSet) -> RoleSet {
        if self.contains(Role::Admin) {
            RoleSet::EMPTY
        } else {
            RoleSet(target.0 & !self.0)
        }
    }

    /// The roles held by both `self` and `other`, where admin holds every role: a token's
    /// effective roles are its scopes limited to its user's current roles
    /// (`scopes.limited_to(user_roles)`). Never more than either side grants.
    pub fn limited_to(self, other: RoleSet) -> RoleSet {
        if self.contains(Role::Admin) {
            other
        } else if other.contains(Role::Admin) {
            self
        } else {
            RoleSet(self.0 & other.0)
        }
    }

    /// Parses role slugs. Unknown slugs are reported together, in the Lytics wording:
    /// `Unknown roles "foo,bar"`.
    pub fn parse_slugs<'a>(slugs: impl IntoIterator<Item = &'a str>) -> crate::Result<Self> {
        let mut set = Self::EMPTY;
        let mut unknown = Vec::new();
        for s in slugs {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            match Role::from_slug(s) {
                Some(r) => set = set.with(r),
                None => unknown.push(s),
            }
        }
        if unknown.is_empty() {
            Ok(set)
        } else {
            Err(crate::Error::invalid(format!(
                "Unknown roles \"{}\"",
                unknown.join(",")
            )))
        }
    }

    /// Whether these roles grant access to PII fields.
    pub fn sees_pii(self) -> bool {
        self.permissions().contains(Permission::PiiRead)
    }
}

/// The refusal when a change would leave an account without a user holding `admin` (nobody
/// could then manage users or mint admin tokens through the API).
pub fn last_admin() -> crate::Error {
    crate::Error::Conflict(
        "Cannot remove the last admin of this account: grant admin to another user first".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    /// (role, permissions it must grant, permissions it must not grant)
    fn matrix() -> Vec<(Role, Vec<Permission>, Vec<Permission>)> {
        vec![
            (Role::Admin, Permission::ALL.to_vec(), vec![]),
            (
                Role::Data,
                vec![
                    P::DataUpload,
                    P::EntityRead,
                    P::ContentRead,
                    P::SegmentsRead,
                ],
                vec![
                    P::SegmentsWrite,
                    P::PiiRead,
                    P::AuthsRead,
                    P::UsersManage,
                    P::TokensCreate,
                ],
            ),
            (
                Role::DataWrite,
                vec![P::DataUpload],
                vec![P::EntityRead, P::SegmentsRead, P::AuthsRead, P::PiiRead],
            ),
            (
                Role::ContentManager,
                vec![P::ContentRead, P::ContentWrite],
                vec![P::SegmentsWrite, P::DataUpload, P::PiiRead],
            ),
            (
                Role::SegmentManager,
                vec![P::SegmentsRead, P::SegmentsWrite],
                vec![P::SegmentsExport, P::CampaignsWrite, P::PiiRead],
            ),
            (
                Role::Marketer,
                vec![
                    P::SegmentsRead,
                    P::SegmentsWrite,
                    P::CampaignsRead,
                    P::CampaignsWrite,
                ],
                vec![P::CampaignsPublish, P::SegmentsExport, P::PiiRead],
            ),
            (
                Role::Observer,
                vec![P::SegmentsRead, P::CampaignsRead],
                vec![
                    P::SegmentsWrite,
                    P::CampaignsWrite,
                    P::EntityRead,
                    P::AuthsRead,
                ],
            ),
            (
                Role::DataManager,
                vec![
                    P::SchemaWrite,
                    P::QueriesWrite,
                    P::UsersRead,
                    P::ContentWrite,
                    P::AuthsRead,
                    P::AuthsWrite,
                    P::SettingsWrite,
                    P::PiiRead,
                    P::EntityRead,
                    P::ProvidersWrite,
                    P::WorksWrite,
                    P::TokensCreate,
                ],
                vec![
                    P::UsersManage,
                    P::AccountManage,
                    P::AuditRead,
                    P::CampaignsPublish,
                ],
            ),
            (
                Role::CampaignManager,
                vec![P::CampaignsPublish, P::SegmentsExport, P::SegmentsWrite],
                vec![P::PiiRead, P::AuthsRead, P::UsersRead],
            ),
            (
                Role::GeneralManager,
                vec![
                    P::SegmentsExport,
                    P::CampaignsPublish,
                    P::SchemaWrite,
                    P::AuthsWrite,
                    P::PiiRead,
                    P::EntityRead,
                    P::WorksWrite,
                    P::SettingsRead,
                ],
                vec![
                    P::UsersManage,
                    P::UsersRead,
                    P::AccountManage,
                    P::SettingsWrite,
                    P::AuditRead,
                ],
            ),
        ]
    }

    #[test]
    fn the_role_matrix_grants_what_the_seed_describes() {
        for (role, yes, no) in matrix() {
            let perms = RoleSet::of(&[role]).permissions();
            for p in yes {
                assert!(perms.contains(p), "{role} must grant {}", p.name());
            }
            for p in no {
                assert!(!perms.contains(p), "{role} must not grant {}", p.name());
            }
            assert!(perms.contains(P::AccountRead), "{role} reads its account");
        }
    }

    #[test]
    fn pii_is_for_admin_data_manager_and_general_manager_only() {
        for r in Role::ALL {
            let expect = matches!(r, Role::Admin | Role::DataManager | Role::GeneralManager);
            assert_eq!(RoleSet::of(&[r]).sees_pii(), expect, "{r}");
        }
    }

    #[test]
    fn slugs_round_trip_and_unknown_ones_are_named() {
        for r in Role::ALL {
            assert_eq!(Role::from_slug(r.slug()), Some(r));
        }
        let err = RoleSet::parse_slugs(["admin", "wizard", "god"]).unwrap_err();
        assert_eq!(err.to_string(), "Unknown roles \"wizard,god\"");
    }

    #[test]
    fn delegation_never_escalates() {
        let dm = RoleSet::of(&[Role::DataManager]);
        let want = RoleSet::of(&[Role::DataManager, Role::Admin]);
        assert_eq!(dm.not_delegable(want), RoleSet::of(&[Role::Admin]));
        assert!(RoleSet::of(&[Role::Admin]).not_delegable(want).is_empty());
    }

    #[test]
    fn effective_roles_never_exceed_either_side() {
        let admin = RoleSet::of(&[Role::Admin]);
        let dm = RoleSet::of(&[Role::DataManager]);
        let data = RoleSet::of(&[Role::Data]);
        let obs = RoleSet::of(&[Role::Observer]);
        assert_eq!(admin.limited_to(admin), admin);
        assert_eq!(admin.limited_to(dm), dm);
        assert_eq!(data.limited_to(admin), data);
        assert_eq!(admin.limited_to(obs).permissions(), obs.permissions());
        assert_eq!(dm.limited_to(obs), RoleSet::EMPTY);
        let both = RoleSet::of(&[Role::Data, Role::DataManager]);
        assert_eq!(both.limited_to(dm), dm);
        for a in Role::ALL {
            for b in Role::ALL {
                let (a, b) = (RoleSet::of(&[a]), RoleSet::of(&[b]));
                let m = a.limited_to(b);
                assert!(a.not_delegable(m).is_empty() && b.not_delegable(m).is_empty());
            }
        }
    }

    #[test]
    fn stored_bits_round_trip() {
        let s = RoleSet::of(&[Role::Observer, Role::GeneralManager]);
        assert_eq!(RoleSet::from_bits(s.bits()), s);
    }
}
