// Package storage is the emulator's Cloud Storage: a subset of the JSON API (v1) served over
// plain HTTP on the emulator's one address, enough for the official JSON API client
// (google.golang.org/api/storage/v1, through gcp.NewStorageAPI) to run the Runway Jobs durable
// store (shared/state's GCS) with real generation preconditions. The emulator registers it on its mux; the functions and
// runwayctl reach it through gcp.Config.StorageOptions with RUNWAY_EMULATOR_HOST set.
//
// Served (paths as the client calls them with a custom endpoint of http://host:port/storage/v1/):
//
//	POST   /storage/v1/b?project=P                          buckets.insert (409 if it exists)
//	GET    /storage/v1/b?project=P                          buckets.list
//	GET    /storage/v1/b/{bucket}                           buckets.get
//	DELETE /storage/v1/b/{bucket}                           buckets.delete (409 unless empty)
//	POST   /upload/storage/v1/b/{bucket}/o?uploadType=multipart|media&name=…   objects.insert
//	GET    /storage/v1/b/{bucket}/o/{object}[?alt=media]    objects.get: metadata or media
//	DELETE /storage/v1/b/{bucket}/o/{object}                objects.delete
//	GET    /storage/v1/b/{bucket}/o                         objects.list
//	GET    /storage/v1/b/{bucket}/iam/testPermissions?permissions=…   buckets.testIamPermissions
//
// Object names arrive path-escaped (a "/" in a name is %2F) and are unescaped before use.
// Preconditions ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch and
// ifMetagenerationNotMatch are honoured on insert, get and delete as Google does: 412 with
// reason conditionNotMet, or 304 on a get whose NotMatch condition fails; ifGenerationMatch=0
// means "must not exist". Generations are strictly increasing int64s shared by every object
// (microseconds of the emulator's clock, bumped by one when the clock has not moved), so a
// deleted and recreated object never repeats one. Errors carry Google's JSON body
// ({"error":{"code":…,"message":…,"errors":[{"reason":…}]}}). Media answers carry
// X-Goog-Generation, X-Goog-Metageneration and X-Goog-Hash (crc32c, md5) and honour a single
// Range. Multipart uploads that state a crc32c or md5Hash are checked against the media.
//
// Fault injection: each route checks the emulator's fault injector under the pseudo-method
// "/http/storage.googleapis.com/<method>", for example
// "/http/storage.googleapis.com/objects.insert"; an injected gRPC code is answered with the
// HTTP status Google's front ends use for it.
//
// Fidelity limits (what differs from Cloud Storage):
//   - No authentication or ACLs. IAM is the emulator's deny rules (Options.IAM, package iam):
//     each route needs its permission (objects.get storage.objects.get, objects.insert
//     storage.objects.create, …) on "projects/_/buckets/B" or ".../objects/O" (buckets.insert
//     and buckets.list on "projects/P") and answers 403 reason forbidden without it;
//     testPermissions answers from the same rules. predefinedAcl, kmsKeyName,
//     userProject and encryption headers are accepted and ignored. Nothing is persisted.
//   - Only the JSON API: no XML API (the client must use storage.WithJSONReads, which
//     gcp.Config.StorageOptions sets) and no gRPC API.
//   - Uploads are single requests (uploadType=multipart or media); resumable uploads
//     (uploadType=resumable, what the client uses when Writer.ChunkSize > 0) are answered
//     501. Bodies are limited to 32 MiB.
//   - A bucket springs into existence on the first object written to it (Google answers 404
//     until it is created); object reads and lists of a bucket nobody created or wrote behave
//     as on an empty bucket. Bucket settings (location, storage class, versioning, lifecycle,
//     retention, labels) are stored as given, or defaulted, and never act.
//   - Only live objects are kept: no versioning, no soft delete; a get or delete naming
//     another generation answers 404. No patch, update, compose, copy, rewrite, notifications
//     or object holds. Metageneration is always 1.
//   - Listing honours prefix, delimiter, includeTrailingDelimiter, startOffset, endOffset,
//     pageToken and maxResults (at most 1,000 entries of items and prefixes together);
//     matchGlob and versions=true are refused with 400. Page tokens are the emulator's own.
//   - Field selection (fields=) and projection are ignored: every answer is the full resource.
package storage
