package storage

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/emulator/iam"
)

// maxBody bounds an upload, as the emulator keeps every object in memory.
const maxBody = 32 << 20

// faultPrefix starts the pseudo-method names checked against Options.Faults.
const faultPrefix = "/http/storage.googleapis.com/"

// Options configure the service.
type Options struct {
	// Clock dates objects and seeds generations; nil means the real clock.
	Clock clock.Clock
	// Faults, when set, is checked on every request (see the package doc).
	Faults *fault.Injector
	// IAM, when set, denies the permissions its rules take away (nil: everything is granted).
	IAM *iam.Policy
}

// Service is the in-memory Cloud Storage. It is safe for concurrent use.
type Service struct {
	opts Options

	mu      sync.Mutex // guards everything below
	buckets map[string]*bucket
	lastGen int64
}

type bucket struct {
	meta    bucketResource
	objects map[string]*object
}

type object struct {
	name        string
	data        []byte
	generation  int64
	contentType string
	metadata    map[string]string
	created     time.Time
	crc32c      uint32
	md5         [md5.Size]byte
}

// New returns an empty service.
func New(opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Service{opts: opts, buckets: map[string]*bucket{}}
}

// Register adds the JSON API routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /storage/v1/b", s.handle("buckets.insert", s.insertBucket))
	mux.HandleFunc("GET /storage/v1/b", s.handle("buckets.list", s.listBuckets))
	mux.HandleFunc("GET /storage/v1/b/{bucket}", s.handle("buckets.get", s.getBucket))
	mux.HandleFunc("DELETE /storage/v1/b/{bucket}", s.handle("buckets.delete", s.deleteBucket))
	mux.HandleFunc("POST /upload/storage/v1/b/{bucket}/o", s.handle("objects.insert", s.insertObject))
	mux.HandleFunc("GET /storage/v1/b/{bucket}/o", s.handle("objects.list", s.listObjects))
	mux.HandleFunc("GET /storage/v1/b/{bucket}/o/{object...}", s.handle("objects.get", s.getObject))
	mux.HandleFunc("DELETE /storage/v1/b/{bucket}/o/{object...}", s.handle("objects.delete", s.deleteObject))
	mux.HandleFunc("GET /storage/v1/b/{bucket}/iam/testPermissions", s.handle("buckets.testIamPermissions", s.testPermissions))
}

// handle wraps a route with its fault check and answers its error.
func (s *Service) handle(method string, fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkFault(r.Context(), faultPrefix+method); err != nil {
			writeError(w, faultError(err))
			return
		}
		if err := s.checkIAM(method, r); err != nil {
			writeError(w, err)
			return
		}
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	}
}

func (s *Service) checkFault(ctx context.Context, method string) error {
	if s.opts.Faults == nil {
		return nil
	}
	return s.opts.Faults.Check(ctx, method)
}

// nextGeneration returns a generation greater than any given before. Callers hold s.mu.
func (s *Service) nextGeneration(now time.Time) int64 {
	s.lastGen = max(now.UnixMicro(), s.lastGen+1)
	return s.lastGen
}

// validBucketName is Google's rule for bucket names, less the domain checks of dotted names.
var validBucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$`)

func (s *Service) insertBucket(w http.ResponseWriter, r *http.Request) error {
	project := r.URL.Query().Get("project")
	if project == "" {
		return errorf(http.StatusBadRequest, "required", "Required parameter: project")
	}
	var req bucketResource
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "parseError", "Parse Error: %v", err)
	}
	if req.Name == "" {
		return errorf(http.StatusBadRequest, "required", "Required: bucket name")
	}
	if !validBucketName.MatchString(req.Name) {
		return errorf(http.StatusBadRequest, "invalid", "Invalid bucket name: '%s'", req.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[req.Name]; ok {
		return errorf(http.StatusConflict, "conflict", "Your previous request to create the named bucket succeeded and you already own it.")
	}
	b := s.newBucketLocked(req)
	writeJSON(w, http.StatusOK, b.meta)
	return nil
}

// newBucketLocked stores a bucket from req, defaulting what Google defaults. Callers hold s.mu.
func (s *Service) newBucketLocked(req bucketResource) *bucket {
	now := s.opts.Clock.Now().UTC()
	meta := req
	meta.Kind = "storage#bucket"
	meta.ID = req.Name
	meta.SelfLink = "/storage/v1/b/" + req.Name
	meta.ProjectNumber = "0"
	meta.Metageneration = "1"
	meta.Etag = "CAE="
	meta.TimeCreated = now.Format(time.RFC3339Nano)
	meta.Updated = meta.TimeCreated
	if meta.Location == "" {
		meta.Location = "US"
	}
	if meta.StorageClass == "" {
		meta.StorageClass = "STANDARD"
	}
	if meta.LocationType == "" {
		meta.LocationType = "multi-region"
	}
	b := &bucket{meta: meta, objects: map[string]*object{}}
	s.buckets[req.Name] = b
	return b
}

func (s *Service) listBuckets(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("project") == "" {
		return errorf(http.StatusBadRequest, "required", "Required parameter: project")
	}
	prefix := r.URL.Query().Get("prefix")
	s.mu.Lock()
	items := []bucketResource{}
	for name, b := range s.buckets {
		if strings.HasPrefix(name, prefix) {
			items = append(items, b.meta)
		}
	}
	s.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"kind": "storage#buckets", "items": items})
	return nil
}

func (s *Service) getBucket(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	b, ok := s.buckets[r.PathValue("bucket")]
	var meta bucketResource
	if ok {
		meta = b.meta
	}
	s.mu.Unlock()
	if !ok {
		return errBucketNotFound()
	}
	writeJSON(w, http.StatusOK, meta)
	return nil
}

func (s *Service) deleteBucket(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("bucket")
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return errBucketNotFound()
	}
	if len(b.objects) > 0 {
		return errorf(http.StatusConflict, "conflict", "The bucket you tried to delete is not empty.")
	}
	delete(s.buckets, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) insertObject(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	conds, err := parseConditions(q)
	if err != nil {
		return err
	}
	var up upload
	switch t := q.Get("uploadType"); t {
	case "multipart":
		up, err = parseMultipart(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, maxBody))
	case "media":
		up, err = parseMedia(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, maxBody))
	case "resumable":
		return errorf(http.StatusNotImplemented, "notImplemented", "the emulator serves single-request uploads only (uploadType=multipart or media); set Writer.ChunkSize = 0")
	default:
		return errorf(http.StatusBadRequest, "invalidParameter", "Invalid upload type: '%s'", t)
	}
	if err != nil {
		return err
	}
	name := q.Get("name")
	if name == "" {
		name = up.meta.Name
	}
	if err := validObjectName(name); err != nil {
		return err
	}
	if g := q.Get("generation"); g != "" {
		return errorf(http.StatusBadRequest, "invalidParameter", "generation cannot be set on insert")
	}
	obj := &object{
		name:        name,
		data:        up.media,
		contentType: up.contentType(),
		metadata:    up.meta.Metadata,
		crc32c:      crc32.Checksum(up.media, crc32.MakeTable(crc32.Castagnoli)),
		md5:         md5.Sum(up.media),
	}
	if err := up.checkHashes(obj); err != nil {
		return err
	}
	bucketName := r.PathValue("bucket")
	s.mu.Lock()
	b, ok := s.buckets[bucketName]
	if !ok {
		if !validBucketName.MatchString(bucketName) {
			s.mu.Unlock()
			return errBucketNotFound()
		}
		b = s.newBucketLocked(bucketResource{Name: bucketName})
	}
	cur := b.objects[name]
	if err := conds.check(cur, false); err != nil {
		s.mu.Unlock()
		return err
	}
	now := s.opts.Clock.Now().UTC()
	obj.generation = s.nextGeneration(now)
	obj.created = now
	b.objects[name] = obj
	res := obj.resource(bucketName)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, res)
	return nil
}

// lookup returns the named object of the request, or a 404.
func (s *Service) lookup(r *http.Request) (bucketName string, obj *object, err error) {
	bucketName, name := r.PathValue("bucket"), r.PathValue("object")
	if name == "" {
		return "", nil, errorf(http.StatusNotFound, "notFound", "Not Found")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[bucketName]; ok {
		obj = b.objects[name]
	}
	if obj == nil {
		return "", nil, errObjectNotFound(bucketName, name)
	}
	return bucketName, obj, nil
}

func (s *Service) getObject(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	conds, err := parseConditions(q)
	if err != nil {
		return err
	}
	bucketName, obj, err := s.lookup(r)
	if err != nil {
		return err
	}
	// Objects are immutable once stored (a write replaces the pointer), so obj can be read
	// without the lock.
	if err := conds.check(obj, true); err != nil {
		return err
	}
	switch q.Get("alt") {
	case "", "json":
		writeJSON(w, http.StatusOK, obj.resource(bucketName))
	case "media":
		h := w.Header()
		h.Set("Content-Type", obj.contentType)
		h.Set("X-Goog-Generation", strconv.FormatInt(obj.generation, 10))
		h.Set("X-Goog-Metageneration", "1")
		h.Set("X-Goog-Hash", "crc32c="+obj.crc32cString()+",md5="+base64.StdEncoding.EncodeToString(obj.md5[:]))
		h.Set("X-Goog-Stored-Content-Length", strconv.Itoa(len(obj.data)))
		h.Set("X-Goog-Stored-Content-Encoding", "identity")
		h.Set("X-Goog-Storage-Class", "STANDARD")
		h.Set("Etag", obj.etag())
		// ServeContent answers a single Range with 206 and Content-Range, as Google does.
		http.ServeContent(w, r, "", obj.created, bytes.NewReader(obj.data))
	default:
		return errorf(http.StatusBadRequest, "invalidParameter", "Invalid value for alt: %s", q.Get("alt"))
	}
	return nil
}

func (s *Service) deleteObject(w http.ResponseWriter, r *http.Request) error {
	conds, err := parseConditions(r.URL.Query())
	if err != nil {
		return err
	}
	bucketName, name := r.PathValue("bucket"), r.PathValue("object")
	s.mu.Lock()
	defer s.mu.Unlock()
	var obj *object
	b, ok := s.buckets[bucketName]
	if ok {
		obj = b.objects[name]
	}
	if obj == nil {
		return errObjectNotFound(bucketName, name)
	}
	if err := conds.check(obj, false); err != nil {
		return err
	}
	delete(b.objects, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// snapshot returns the objects of a bucket sorted by name (none if it does not exist).
func (s *Service) snapshot(bucketName string) []*object {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil
	}
	objs := make([]*object, 0, len(b.objects))
	for _, o := range b.objects {
		objs = append(objs, o)
	}
	slices.SortFunc(objs, func(a, b *object) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return objs
}

func (o *object) crc32cString() string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], o.crc32c)
	return base64.StdEncoding.EncodeToString(b[:])
}

func (o *object) etag() string {
	return base64.StdEncoding.EncodeToString(binary.AppendUvarint(nil, uint64(o.generation)))
}

func (o *object) resource(bucketName string) objectResource {
	ts := o.created.Format(time.RFC3339Nano)
	gen := strconv.FormatInt(o.generation, 10)
	return objectResource{
		Kind:                    "storage#object",
		ID:                      bucketName + "/" + o.name + "/" + gen,
		SelfLink:                "/storage/v1/b/" + bucketName + "/o/" + escape(o.name),
		MediaLink:               "/download/storage/v1/b/" + bucketName + "/o/" + escape(o.name) + "?generation=" + gen + "&alt=media",
		Name:                    o.name,
		Bucket:                  bucketName,
		Generation:              gen,
		Metageneration:          "1",
		ContentType:             o.contentType,
		StorageClass:            "STANDARD",
		Size:                    strconv.Itoa(len(o.data)),
		MD5Hash:                 base64.StdEncoding.EncodeToString(o.md5[:]),
		CRC32C:                  o.crc32cString(),
		Etag:                    o.etag(),
		TimeCreated:             ts,
		Updated:                 ts,
		TimeStorageClassUpdated: ts,
		TimeFinalized:           ts,
		Metadata:                o.metadata,
	}
}
