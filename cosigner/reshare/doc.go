// Package reshare is one host's part in `cosigner reshare`: moving a
// cluster's key from M-of-N shares to M'-of-N' new ones, same validator
// key, next epoch, over the ceremony package's mutual-TLS links.
//
// The cluster CA key is discarded after `shard`, so newcomers cannot be
// given certificates of the old cluster. A resharing therefore runs among
// the homes of a NEW cluster that Prepare writes (fresh CA): one home per
// new member (ids 1..N', a full cosigner home without a share) and one per
// old host that deals and retires (ids above N', TLS and plan only). Every
// one of them holds the same plan (PlanFile: M', N', the epoch to write,
// each participant's ceremony address and its old share id) and a copy of
// the old group file (OldGroupFile, public).
//
// Run takes part: a host that held an old share reads it, its group and
// its sign-state marks from its old home (which it never changes until
// the new files are complete), deals, and sends its marks in its ceremony
// hello; a newcomer only receives. Every new member writes, only after the
// ceremony completed and the new group key is checked to be the old
// validator key: one state file per chain carried at the highest mark of
// all dealers (signstate.Highest), then the group file, then the share
// file, each created new, never replacing anything. Finally an old home is
// retired (share.Retire), so `cosigner start` refuses it from then on.
//
// Why the dealers' marks suffice: the dealers are at least M old
// cosigners, and every signature the old cluster made took M cosigners;
// since M > N/2, every such quorum contains a dealer, whose mark is at or
// above that signature. A new member starting at the dealers' highest mark
// therefore refuses everything the old cluster signed, except the same
// content again. The old cosigners must be stopped for that: Run's caller
// holds each old home's lock (as `cosigner start` does) for the whole
// ceremony.
package reshare
