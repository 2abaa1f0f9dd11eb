// Package sign makes and checks the signatures git puts on commits, in
// both of the formats git verifies with tools most machines have: SSH
// signatures (OpenSSH's SSHSIG format, namespace "git", what
// `git -c gpg.format=ssh commit -S` and `ssh-keygen -Y sign -n git` write)
// and detached armored OpenPGP signatures (what gpg writes).
//
// Load reads a private key into a Signer, whose Sign is the shape go-git's
// git.Signer and envrepo.Signer ask for: it signs a commit encoded without
// its signature, and the result becomes the commit's gpgsig header. Verify
// checks a commit's gpgsig header against a Verifier: an allowed_signers
// file, as git's gpg.ssh.allowedSignersFile names one, and an OpenPGP
// keyring. A commit that is unsigned, or signed by a key the Verifier does
// not hold, or altered after signing, is reported with the reason, not as
// an error: errors are for what kept the question from being asked.
//
// It knows nothing else of ferry: no remote, no history, no flags.
package sign
