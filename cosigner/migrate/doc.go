// Package migrate reads the configuration, keys and sign state of the
// remote signers operators run today (TMKMS; Horcrux) and writes a cosigner
// home from them, keeping the validator's key and never starting below what
// the old signer signed.
//
// It knows those signers' file formats; signing is left to the packages a
// migrated home is started with.
package migrate
