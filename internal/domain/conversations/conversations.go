// Package conversations stores a tenant's bot conversations in the tenant's own MongoDB
// database, with message text encrypted under the tenant's data key, and caches conversation
// reads in the tenant's Redis namespace. The tenant comes from the context only; ids a caller
// passes are looked up inside that tenant's database and nowhere else.
package conversations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// TextField names message text in the encryption's associated data.
const TextField = "messages.text"

// TitleField names conversation titles in the encryption's associated data.
const TitleField = "conversations.title"

// cacheKind is the Redis kind of cached conversation reads.
const cacheKind = "conversation_cache"

// cacheTTL bounds a cached read; writes invalidate it sooner.
const cacheTTL = 5 * time.Minute

// maxCachedBytes bounds a cached page as Redis holds it; a larger first page is read from
// MongoDB every time.
const maxCachedBytes = 256 << 10

// ErrNotFound: no such conversation in this tenant.
var ErrNotFound = errors.New("conversation not found")

// Conversation is a conversation's metadata, with its title in plain form (only in memory and
// in API answers).
type Conversation struct {
	ID           string    `json:"id"`
	Title        string    `json:"title"`
	MessageCount int       `json:"messageCount"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// storedConversation is a conversation as stored: the title is ciphertext (titleEnc). A
// conversation written before titles were encrypted has a plaintext title instead, read as it
// is until a key rotation re-encrypts it.
//
// Seq marks a conversation whose messages are numbered (see AddMessage): its MessageCount is
// only a hint, never above the truth, and the exact count is derived from the numbered ids.
// Conversations from before numbering keep their stored count.
type storedConversation struct {
	ID           string    `bson:"_id" json:"id"`
	LegacyTitle  string    `bson:"title,omitempty" json:"title,omitempty"`
	Title        []byte    `bson:"titleEnc,omitempty" json:"titleEnc,omitempty"`
	MessageCount int       `bson:"messageCount" json:"messageCount"`
	Seq          bool      `bson:"seq,omitempty" json:"seq,omitempty"`
	CreatedAt    time.Time `bson:"createdAt" json:"createdAt"`
	UpdatedAt    time.Time `bson:"updatedAt" json:"updatedAt"`
}

// open returns the conversation with its title decrypted.
func (s *Store) open(ctx context.Context, c storedConversation) (Conversation, error) {
	out := Conversation{ID: c.ID, Title: c.LegacyTitle, MessageCount: c.MessageCount, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Title != nil {
		plain, err := s.keys.Decrypt(ctx, TitleField, c.Title)
		if err != nil {
			return Conversation{}, fmt.Errorf("conversations: title of %s: %w", c.ID, err)
		}
		out.Title = string(plain)
	}
	return out, nil
}

// Message is one message, with its text in plain form (only in memory and in API answers).
type Message struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversationId"`
	Role           string    `json:"role"`
	Text           string    `json:"text"`
	CreatedAt      time.Time `json:"createdAt"`
}

// storedMessage is a message as stored: the text is ciphertext.
type storedMessage struct {
	ID             string    `bson:"_id" json:"id"`
	ConversationID string    `bson:"conversationId" json:"conversationId"`
	Role           string    `bson:"role" json:"role"`
	Text           []byte    `bson:"text" json:"text"`
	Seq            int       `bson:"seq,omitempty" json:"seq,omitempty"`
	CreatedAt      time.Time `bson:"createdAt" json:"createdAt"`
}

// cached is a page of a conversation as the Redis cache holds it (only the first page at the
// default size, so a cached value is never larger than a page): the stored form, so titles and
// message text stay encrypted in Redis too.
type cached struct {
	Conversation storedConversation `json:"conversation"`
	Messages     []storedMessage    `json:"messages"`
	Next         string             `json:"next,omitempty"`
}

// Store reaches conversations through the tenant-scoped stores, within each tenant's bounds.
type Store struct {
	mongo  *tenantmongo.Store
	keys   *keyring.Keyring
	redis  *tenantredis.Store
	usage  *tenantdb.Store
	bounds limits.Tenant
}

// New returns a Store; usage counts what each tenant keeps against bounds.
func New(m *tenantmongo.Store, k *keyring.Keyring, r *tenantredis.Store, usage *tenantdb.Store, bounds limits.Tenant) *Store {
	return &Store{mongo: m, keys: k, redis: r, usage: usage, bounds: bounds}
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create starts a conversation, counted against the tenant's conversation and byte bounds
// (*limits.Exceeded when full; nothing written).
func (s *Store) Create(ctx context.Context, title string) (Conversation, error) {
	coll, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return Conversation{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ct, err := s.keys.Encrypt(ctx, TitleField, []byte(title))
	if err != nil {
		return Conversation{}, fmt.Errorf("conversations: encrypt title: %w", err)
	}
	if err := s.usage.ReserveDocuments(ctx, 1, int64(len(title)), s.bounds); err != nil {
		return Conversation{}, err
	}
	c := storedConversation{ID: newID(), Title: ct, Seq: true, CreatedAt: now, UpdatedAt: now}
	if _, err := coll.InsertOne(ctx, c); err != nil {
		s.release(ctx, 1, int64(len(title)))
		return Conversation{}, fmt.Errorf("conversations: create: %w", err)
	}
	return Conversation{ID: c.ID, Title: title, CreatedAt: now, UpdatedAt: now}, nil
}

// release gives back a reservation whose write failed; a failure here only over-counts, which
// keeps the bound safe, and is logged by the caller's error path.
func (s *Store) release(ctx context.Context, conversations int, bytes int64) {
	_ = s.usage.ReleaseDocuments(context.WithoutCancel(ctx), conversations, bytes)
}

// ListCursor continues a conversation list after the last conversation of a page.
type ListCursor struct {
	UpdatedAt time.Time
	ID        string
}

// String is the cursor as the API hands it out.
func (c ListCursor) String() string {
	return strconv.FormatInt(c.UpdatedAt.UnixMilli(), 10) + "." + c.ID
}

// ParseListCursor reads a cursor String made; ok is false for anything else.
func ParseListCursor(v string) (ListCursor, bool) {
	ms, id, found := strings.Cut(v, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !found || err != nil || !validID(id) {
		return ListCursor{}, false
	}
	return ListCursor{UpdatedAt: time.UnixMilli(n).UTC(), ID: id}, true
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// List returns a page of conversations, most recently updated first, after the cursor (nil:
// from the start), and the cursor of the next page (nil at the end).
func (s *Store) List(ctx context.Context, after *ListCursor, limit int64) ([]Conversation, *ListCursor, error) {
	coll, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return nil, nil, err
	}
	filter := bson.D{}
	if after != nil {
		filter = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "updatedAt", Value: bson.D{{Key: "$lt", Value: after.UpdatedAt}}}},
			bson.D{{Key: "updatedAt", Value: after.UpdatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: after.ID}}}},
		}}}
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "updatedAt", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("conversations: list: %w", err)
	}
	var stored []storedConversation
	if err := cur.All(ctx, &stored); err != nil {
		return nil, nil, fmt.Errorf("conversations: list: %w", err)
	}
	var next *ListCursor
	if int64(len(stored)) > limit {
		stored = stored[:limit]
		last := stored[len(stored)-1]
		next = &ListCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	out := make([]Conversation, 0, len(stored))
	for _, c := range stored {
		conv, err := s.open(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, conv)
	}
	return out, next, nil
}

// Page is a conversation with one page of its messages, oldest first; Next continues after it
// ("" on the last page).
type Page struct {
	Conversation Conversation
	Messages     []Message
	Next         string
}

// Get returns a conversation with the page of its messages after the cursor ("" from the
// first), decrypted. The first page at the default size comes from the cache when it can.
func (s *Store) Get(ctx context.Context, id, after string, limit int) (Page, error) {
	skip := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 1 {
			return Page{}, ErrBadCursor
		}
		skip = n
	}
	cacheable := skip == 0 && limit == limits.DefaultPage
	var scope *tenantredis.Scope
	if cacheable {
		sc, err := s.redis.Scope(ctx)
		if err != nil {
			return Page{}, err
		}
		scope = sc
		var c cached
		if raw, err := scope.Get(ctx, cacheKind, id); err == nil && json.Unmarshal([]byte(raw), &c) == nil {
			return s.decrypt(ctx, c)
		}
	}
	c, err := s.load(ctx, id, skip, limit)
	if err != nil {
		return Page{}, err
	}
	if cacheable {
		// Only small pages: Redis answers one command at a time, and a multi-megabyte value
		// would hold every other tenant's commands behind it while it is written out.
		if raw, err := json.Marshal(c); err == nil && len(raw) <= maxCachedBytes {
			_ = scope.Set(ctx, cacheKind, id, string(raw), cacheTTL) // a failed cache write only costs the next read
		}
	}
	return s.decrypt(ctx, c)
}

// ErrBadCursor: a message cursor that no page handed out.
var ErrBadCursor = errors.New("not a cursor of this conversation's messages")

func (s *Store) load(ctx context.Context, id string, skip, limit int) (cached, error) {
	conv, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return cached{}, err
	}
	var c cached
	err = conv.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c.Conversation)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return cached{}, ErrNotFound
	}
	if err != nil {
		return cached{}, fmt.Errorf("conversations: get: %w", err)
	}
	msgs, err := s.mongo.Collection(ctx, tenantmongo.Messages)
	if err != nil {
		return cached{}, err
	}
	c.Messages = []storedMessage{}
	if c.Conversation.Seq {
		if c.Conversation.MessageCount, err = s.count(ctx, msgs, id, c.Conversation.MessageCount); err != nil {
			return cached{}, err
		}
		last := min(skip+limit, c.Conversation.MessageCount)
		if c.Messages, err = pageByID(ctx, msgs, id, skip+1, last); err != nil {
			return cached{}, err
		}
		if last < c.Conversation.MessageCount {
			c.Next = strconv.Itoa(last)
		}
		return c, nil
	}
	// A conversation from before numbering: its messages in creation order, by offset.
	cur, err := msgs.Find(ctx, bson.D{{Key: "conversationId", Value: id}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).SetSkip(int64(skip)).SetLimit(int64(limit+1)))
	if err != nil {
		return cached{}, fmt.Errorf("conversations: messages: %w", err)
	}
	if err := cur.All(ctx, &c.Messages); err != nil {
		return cached{}, fmt.Errorf("conversations: messages: %w", err)
	}
	if len(c.Messages) > limit {
		c.Messages, c.Next = c.Messages[:limit], strconv.Itoa(skip+limit)
	}
	return c, nil
}

// pageLookups bounds the _id lookups of one page read in flight at once.
const pageLookups = 8

// pageByID reads messages first..last of a numbered conversation by their ids, a few at a
// time: lookups by _id are what FerretDB answers without reading the whole collection, so a
// page costs the same however many messages the tenant's other conversations hold (a filter
// on conversationId, or $in, reads them all there).
func pageByID(ctx context.Context, msgs *mongo.Collection, conversationID string, first, last int) ([]storedMessage, error) {
	if first > last {
		return []storedMessage{}, nil
	}
	out := make([]storedMessage, last-first+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pageLookups)
	for i := range out {
		g.Go(func() error {
			err := msgs.FindOne(gctx, bson.D{{Key: "_id", Value: messageID(conversationID, first+i)}}).Decode(&out[i])
			if err != nil {
				return fmt.Errorf("conversations: message %d: %w", first+i, err)
			}
			return nil
		})
	}
	return out, g.Wait()
}

// messageID is the id of a numbered conversation's message seq: unique, so two writers can
// never both insert the same number.
func messageID(conversationID string, seq int) string {
	return fmt.Sprintf("%s-%06d", conversationID, seq)
}

// count derives a numbered conversation's exact message count: numbers are dense (a message
// is numbered only after the one before it exists), so the count is the highest number present,
// found by _id lookups upwards from the stored hint, which is never above it.
func (s *Store) count(ctx context.Context, msgs *mongo.Collection, id string, hint int) (int, error) {
	n := hint
	for {
		err := msgs.FindOne(ctx, bson.D{{Key: "_id", Value: messageID(id, n+1)}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("conversations: count: %w", err)
		}
		n++
	}
}

func (s *Store) decrypt(ctx context.Context, c cached) (Page, error) {
	out := make([]Message, 0, len(c.Messages))
	for _, m := range c.Messages {
		text, err := s.keys.Decrypt(ctx, TextField, m.Text)
		if err != nil {
			return Page{}, fmt.Errorf("conversations: message %s: %w", m.ID, err)
		}
		out = append(out, Message{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Text: string(text), CreatedAt: m.CreatedAt})
	}
	conv, err := s.open(ctx, c.Conversation)
	if err != nil {
		return Page{}, err
	}
	return Page{Conversation: conv, Messages: out, Next: c.Next}, nil
}

// AddMessage appends a message to one of the tenant's conversations, its text encrypted with
// the tenant's newest data key, and drops the cached first page. The text's bytes count
// against the tenant's byte bound and the message against the conversation's; over either:
// *limits.Exceeded, nothing written.
//
// A numbered conversation's message takes the next free number: an insert of an id that
// exists fails on the unique _id, and the writer moves to the next number. So concurrent
// appends neither lose nor share a number, on FerretDB (whose $inc is a read-modify-write)
// as on MongoDB; the count stored on the conversation is only a hint (see count).
func (s *Store) AddMessage(ctx context.Context, conversationID, role, text string) (Message, error) {
	if len(text) > s.bounds.MaxMessageBytes {
		return Message{}, &limits.Exceeded{Bound: limits.BoundMessageBytes, Limit: int64(s.bounds.MaxMessageBytes), TooLarge: true}
	}
	conv, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return Message{}, err
	}
	// FindOne on _id, not CountDocuments: FerretDB pushes down only the former; a count reads
	// the whole collection.
	var head storedConversation
	err = conv.FindOne(ctx, bson.D{{Key: "_id", Value: conversationID}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "messageCount", Value: 1}, {Key: "seq", Value: 1}})).Decode(&head)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("conversations: %w", err)
	}
	ct, err := s.keys.Encrypt(ctx, TextField, []byte(text))
	if err != nil {
		return Message{}, fmt.Errorf("conversations: encrypt: %w", err)
	}
	msgs, err := s.mongo.Collection(ctx, tenantmongo.Messages)
	if err != nil {
		return Message{}, err
	}
	if err := s.usage.ReserveDocuments(ctx, 0, int64(len(text)), s.bounds); err != nil {
		return Message{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := storedMessage{ID: newID(), ConversationID: conversationID, Role: role, Text: ct, CreatedAt: now}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "messageCount", Value: 1}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}}
	if head.Seq {
		if err := s.insertNumbered(ctx, msgs, &m, head.MessageCount); err != nil {
			s.release(ctx, 0, int64(len(text)))
			return Message{}, err
		}
		update = bson.D{{Key: "$max", Value: bson.D{{Key: "messageCount", Value: m.Seq}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}}
	} else if _, err := msgs.InsertOne(ctx, m); err != nil {
		s.release(ctx, 0, int64(len(text)))
		return Message{}, fmt.Errorf("conversations: add message: %w", err)
	}
	if _, err := conv.UpdateOne(ctx, bson.D{{Key: "_id", Value: conversationID}}, update); err != nil {
		return Message{}, fmt.Errorf("conversations: update: %w", err)
	}
	if scope, err := s.redis.Scope(ctx); err == nil {
		_ = scope.Del(ctx, cacheKind, conversationID)
	}
	return Message{ID: m.ID, ConversationID: conversationID, Role: role, Text: text, CreatedAt: now}, nil
}

// insertNumbered inserts m under the first free number after hint, up to the conversation's
// bound.
func (s *Store) insertNumbered(ctx context.Context, msgs *mongo.Collection, m *storedMessage, hint int) error {
	for seq := hint + 1; ; seq++ {
		if seq > s.bounds.MaxMessagesPerConversation {
			return &limits.Exceeded{Bound: limits.BoundMessages, Limit: int64(s.bounds.MaxMessagesPerConversation)}
		}
		m.ID, m.Seq = messageID(m.ConversationID, seq), seq
		_, err := msgs.InsertOne(ctx, m)
		if mongo.IsDuplicateKeyError(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("conversations: add message: %w", err)
		}
		return nil
	}
}

// Reencrypt moves up to batch messages sealed with an older key version to the newest one,
// starting after the message id afterID, and returns the last id it looked at and how many it
// re-encrypted (for the rotation workflow's progress). Idempotent: a message already under the
// newest version is skipped, and each update is conditional on the ciphertext it read.
func (s *Store) Reencrypt(ctx context.Context, afterID string, batch int64) (string, int, bool, error) {
	msgs, err := s.mongo.Collection(ctx, tenantmongo.Messages)
	if err != nil {
		return "", 0, false, err
	}
	newest, err := s.keys.NewestVersion(ctx)
	if err != nil {
		return "", 0, false, err
	}
	cur, err := msgs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: afterID}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(batch))
	if err != nil {
		return "", 0, false, fmt.Errorf("conversations: reencrypt: %w", err)
	}
	var page []storedMessage
	if err := cur.All(ctx, &page); err != nil {
		return "", 0, false, fmt.Errorf("conversations: reencrypt: %w", err)
	}
	done := 0
	touched := map[string]bool{}
	for _, m := range page {
		if v, ok := keyring.Version(m.Text); ok && v == newest {
			continue
		}
		plain, err := s.keys.Decrypt(ctx, TextField, m.Text)
		if err != nil {
			return "", done, false, fmt.Errorf("conversations: reencrypt %s: %w", m.ID, err)
		}
		ct, err := s.keys.Encrypt(ctx, TextField, plain)
		clear(plain)
		if err != nil {
			return "", done, false, err
		}
		res, err := msgs.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}, {Key: "text", Value: m.Text}}, bson.D{{Key: "$set", Value: bson.D{{Key: "text", Value: ct}}}})
		if err != nil {
			return "", done, false, fmt.Errorf("conversations: reencrypt %s: %w", m.ID, err)
		}
		done += int(res.ModifiedCount)
		touched[m.ConversationID] = true
	}
	if scope, err := s.redis.Scope(ctx); err == nil {
		for id := range touched {
			_ = scope.Del(ctx, cacheKind, id)
		}
	}
	last := afterID
	if len(page) > 0 {
		last = page[len(page)-1].ID
	}
	return last, done, int64(len(page)) < batch, nil
}

// ReencryptTitles moves every conversation title to the newest data key (titles written before
// they were encrypted are encrypted now) and returns how many it rewrote. Idempotent: a title
// under the newest version is skipped, and each update is conditional on the value it read.
func (s *Store) ReencryptTitles(ctx context.Context) (int, error) {
	conv, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return 0, err
	}
	newest, err := s.keys.NewestVersion(ctx)
	if err != nil {
		return 0, err
	}
	cur, err := conv.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "title", Value: 1}, {Key: "titleEnc", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("conversations: reencrypt titles: %w", err)
	}
	var all []storedConversation
	if err := cur.All(ctx, &all); err != nil {
		return 0, fmt.Errorf("conversations: reencrypt titles: %w", err)
	}
	done := 0
	for _, c := range all {
		var plain []byte
		filter := bson.D{{Key: "_id", Value: c.ID}}
		switch {
		case c.Title != nil:
			if v, ok := keyring.Version(c.Title); ok && v == newest {
				continue
			}
			if plain, err = s.keys.Decrypt(ctx, TitleField, c.Title); err != nil {
				return done, fmt.Errorf("conversations: reencrypt title of %s: %w", c.ID, err)
			}
			filter = append(filter, bson.E{Key: "titleEnc", Value: c.Title})
		case c.LegacyTitle != "":
			plain = []byte(c.LegacyTitle)
			filter = append(filter, bson.E{Key: "title", Value: c.LegacyTitle})
		default:
			continue
		}
		ct, err := s.keys.Encrypt(ctx, TitleField, plain)
		clear(plain)
		if err != nil {
			return done, err
		}
		res, err := conv.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "titleEnc", Value: ct}}}, {Key: "$unset", Value: bson.D{{Key: "title", Value: ""}}}})
		if err != nil {
			return done, fmt.Errorf("conversations: reencrypt title of %s: %w", c.ID, err)
		}
		done += int(res.ModifiedCount)
		if scope, err := s.redis.Scope(ctx); err == nil {
			_ = scope.Del(ctx, cacheKind, c.ID)
		}
	}
	return done, nil
}
