// Package secrets keeps Secrets in git encrypted with SOPS to age
// recipients, one per tier: it decrypts them in memory right before apply
// with the keys of the cluster's tier, encrypts them for exactly the tiers
// their sensitivity allows, and checks (without private keys) that every
// Secret is encrypted to the right recipients.
//
// It uses the SOPS Go module, so files written by the sops CLI work
// unchanged and their MAC is verified. Plaintext never leaves memory: it is
// not logged, not written to disk, and not part of any error.
package secrets

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/formats"
	sopsconfig "github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/stores/dotenv"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"golang.org/x/net/context"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SOPSVersion is the version of the SOPS module strata is built with (go.mod),
// written into the files strata encrypts as the sops CLI does.
// (sops/v3/version would pull in the CLI's dependencies for one string.)
const SOPSVersion = "3.13.3"

// store is the part of SOPS' store interface strata uses.
type store interface {
	LoadEncryptedFile([]byte) (sops.Tree, error)
	LoadPlainFile([]byte) (sops.TreeBranches, error)
	EmitEncryptedFile(sops.Tree) ([]byte, error)
	EmitPlainFile(sops.TreeBranches) ([]byte, error)
}

// storeFor returns the SOPS store of format, as the CLI picks it (without
// importing the CLI's package, which brings cloud-storage clients).
func storeFor(f formats.Format) store {
	switch f {
	case formats.Yaml:
		return sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{})
	case formats.Json:
		return sopsjson.NewStore(&sopsconfig.JSONStoreConfig{})
	case formats.Dotenv:
		return dotenv.NewStore(&sopsconfig.DotenvStoreConfig{})
	}
	return sopsjson.NewBinaryStore(&sopsconfig.JSONBinaryStoreConfig{})
}

// EncryptedRegex is what strata encrypts in a Secret manifest: its values
// only. apiVersion, kind and metadata stay readable, so that kustomize,
// placement and the recipient check work without keys.
const EncryptedRegex = "^(data|stringData)$"

// NoKeyError is a SOPS document none of whose recipients this reconciler
// holds a key for: one line instead of SOPS' per-group failure block.
type NoKeyError struct {
	File       string
	Recipients []string
	Held       []string
	// Tier is the tier whose keys were tried, when known.
	Tier string
	// Describe names a recipient for messages (its tier); nil prints it bare.
	Describe func(string) string
}

func (e *NoKeyError) Error() string {
	d := e.Describe
	if d == nil {
		d = func(s string) string { return s }
	}
	held := "no age key"
	if len(e.Held) > 0 {
		held = "keys for " + list(e.Held, d)
	}
	tier := ""
	if e.Tier != "" {
		tier = " (it decrypts with the " + e.Tier + " key only)"
	}
	return fmt.Sprintf("cannot decrypt %s: it is encrypted to %s but this reconciler holds %s%s; re-encrypt it for the tiers its sensitivity allows with `strata secret encrypt`, or give this reconciler the right key (--age-key-dir)",
		e.File, list(e.Recipients, d), held, tier)
}

func list(rs []string, d func(string) string) string {
	if len(rs) == 0 {
		return "[]"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = d(r)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// TamperedError is a SOPS document whose ciphertext or MAC does not match:
// it was changed after it was encrypted.
type TamperedError struct {
	File string
	Err  error
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("refusing %s: SOPS integrity check failed (%v): the file was changed after it was encrypted; restore it from git history or re-encrypt it with `strata secret encrypt`", e.File, e.Err)
}

// Decrypt decrypts a SOPS document in format (formats.Yaml, Json, Binary,
// Dotenv) with ids and verifies its MAC. file names the document in errors.
func Decrypt(file string, doc []byte, format formats.Format, ids Identities) ([]byte, error) {
	store := storeFor(format)
	tree, err := store.LoadEncryptedFile(doc)
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable SOPS file: %v; encrypt it with `strata secret encrypt` or the sops CLI", file, err)
	}
	key, err := dataKey(file, &tree, ids)
	if err != nil {
		return nil, err
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, &TamperedError{File: file, Err: errors.New("a value does not decrypt")}
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, &TamperedError{File: file, Err: errors.New("the MAC does not decrypt")}
	}
	if want != mac {
		return nil, &TamperedError{File: file, Err: errors.New("MAC mismatch")}
	}
	out, err := store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, fmt.Errorf("decrypting %s: %v", file, err)
	}
	return out, nil
}

// dataKey recovers the document's data key through SOPS' key groups with a
// key service that knows only ids (never the environment's keys).
func dataKey(file string, tree *sops.Tree, ids Identities) ([]byte, error) {
	noKey := &NoKeyError{File: file, Recipients: recipientsOf(tree.Metadata), Held: ids.Recipients}
	if ids.Len() == 0 {
		return nil, noKey
	}
	svc := keyservice.NewCustomLocalClient(&ageService{ids: ids})
	key, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{svc}, nil)
	if err != nil {
		var notFound *sops.SopsKeyNotFound
		if errors.As(err, &notFound) {
			return nil, noKey
		}
		// SOPS reports "Error getting data key: 0 successful groups
		// required, got 0" and a block per group; one line says more.
		return nil, noKey
	}
	return key, nil
}

func recipientsOf(m sops.Metadata) []string {
	var out []string
	for _, g := range m.KeyGroups {
		for _, k := range g {
			if a, ok := k.(*sopsage.MasterKey); ok {
				out = append(out, a.Recipient)
			} else {
				out = append(out, k.TypeToIdentifier()+":"+k.ToString())
			}
		}
	}
	return out
}

// ageService is a SOPS key service that decrypts and encrypts data keys
// with age only, with the identities it was given.
type ageService struct {
	ids Identities
}

func (s *ageService) Decrypt(_ context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	k, ok := req.Key.KeyType.(*keyservice.Key_AgeKey)
	if !ok || s.ids.Len() == 0 {
		return nil, status.Error(codes.Unimplemented, "strata decrypts with age keys only")
	}
	mk := &sopsage.MasterKey{Recipient: k.AgeKey.Recipient, EncryptedKey: string(req.Ciphertext)}
	sopsage.ParsedIdentities(s.ids.ids).ApplyToMasterKey(mk)
	pt, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: pt}, nil
}

func (s *ageService) Encrypt(_ context.Context, req *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	k, ok := req.Key.KeyType.(*keyservice.Key_AgeKey)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "strata encrypts with age keys only")
	}
	mk, err := sopsage.MasterKeyFromRecipient(k.AgeKey.Recipient)
	if err != nil {
		return nil, err
	}
	if err := mk.Encrypt(req.Plaintext); err != nil {
		return nil, err
	}
	return &keyservice.EncryptResponse{Ciphertext: mk.EncryptedDataKey()}, nil
}

// Encrypt encrypts a plaintext YAML document (a Secret manifest) for
// recipients in SOPS format, as `sops --encrypt --age R1,R2
// --encrypted-regex '^(data|stringData)$'` does.
func Encrypt(plain []byte, recipients []string) ([]byte, error) {
	return encrypt(plain, formats.Yaml, recipients, EncryptedRegex)
}

// EncryptFile encrypts a whole file in format (a file a secretGenerator
// reads: binary, dotenv, JSON or YAML) as `sops --encrypt` does.
func EncryptFile(plain []byte, format formats.Format, recipients []string) ([]byte, error) {
	return encrypt(plain, format, recipients, "")
}

func encrypt(plain []byte, format formats.Format, recipients []string, regex string) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("no recipients to encrypt for: name one age recipient per tier under secrets.recipients in strata.yaml")
	}
	store := storeFor(format)
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		return nil, fmt.Errorf("reading the file to encrypt: %v", err)
	}
	if len(branches) != 1 {
		return nil, fmt.Errorf("the file holds %d YAML documents: put each Secret in a file of its own", len(branches))
	}
	for _, item := range branches[0] {
		if item.Key == "sops" {
			return nil, errors.New("the file is already encrypted with SOPS: use `strata secret rotate` to re-encrypt it")
		}
	}
	var group sops.KeyGroup
	for _, r := range recipients {
		mk, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("recipient %s is no age public key: %v", r, err)
		}
		group = append(group, keys.MasterKey(mk))
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: []sops.KeyGroup{group}, EncryptedRegex: regex, Version: SOPSVersion,
	}}
	svc := keyservice.NewCustomLocalClient(&ageService{})
	key, errs := tree.GenerateDataKeyWithKeyServices([]keyservice.KeyServiceClient{svc})
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypting the data key: %v", errors.Join(errs...))
	}
	// As the CLI does: the MAC over the plaintext, encrypted with the data
	// key and the modification time as associated data.
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(key, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %v", err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, key, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		return nil, fmt.Errorf("encrypting the MAC: %v", err)
	}
	return store.EmitEncryptedFile(tree)
}
