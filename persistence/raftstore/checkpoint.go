package raftstore

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A state machine snapshot is the Badger directory of a closed DB: its
// files (the tables, the value log, the manifest, the key registry) are a
// consistent image of the state at the snapshot's index. Table files (.sst)
// never change once written, so a checkpoint hard-links them; every other
// file is copied, because Badger appends to it once reopened.
//
// In raft's snapshot store a checkpoint is checkpointMagic followed by a tar
// stream of the directory's regular files; raft's store adds its own CRC.

const checkpointMagic = "parley-fsm-1\n"

// badgerLockFile is Badger's directory lock, which a copy must not carry.
const badgerLockFile = "LOCK"

// checkpoint copies the flat Badger directory src into dst, which must not
// exist.
func checkpoint(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if name == badgerLockFile || !e.Type().IsRegular() {
			continue
		}
		from, to := filepath.Join(src, name), filepath.Join(dst, name)
		if strings.HasSuffix(name, ".sst") && os.Link(from, to) == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// writeCheckpoint streams the checkpoint directory dir to w.
func writeCheckpoint(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, checkpointMagic); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := addFile(tw, filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     info.Name(),
		Size:     info.Size(),
		Mode:     0o600,
	}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// readCheckpoint unpacks a stream written by writeCheckpoint into dst,
// which must not exist. It refuses anything but flat regular files.
func readCheckpoint(r io.Reader, dst string) error {
	br := bufio.NewReader(r)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != checkpointMagic {
		return fmt.Errorf("not a state machine snapshot (header %q, %v)", magic, err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(br)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) || h.Name == "." || h.Name == ".." || h.Name == badgerLockFile {
			return fmt.Errorf("unexpected entry %q in snapshot", h.Name)
		}
		out, err := os.OpenFile(filepath.Join(dst, h.Name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			_ = out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
}
