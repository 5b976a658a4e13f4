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
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/keyring"
	"github.com/misybot/tenancy/internal/tenantmongo"
	"github.com/misybot/tenancy/internal/tenantredis"
)

// TextField names message text in the encryption's associated data.
const TextField = "messages.text"

// TitleField names conversation titles in the encryption's associated data.
const TitleField = "conversations.title"

// cacheKind is the Redis kind of cached conversation reads.
const cacheKind = "conversation_cache"

// cacheTTL bounds a cached read; writes invalidate it sooner.
const cacheTTL = 5 * time.Minute

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
type storedConversation struct {
	ID           string    `bson:"_id" json:"id"`
	LegacyTitle  string    `bson:"title,omitempty" json:"title,omitempty"`
	Title        []byte    `bson:"titleEnc,omitempty" json:"titleEnc,omitempty"`
	MessageCount int       `bson:"messageCount" json:"messageCount"`
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
	CreatedAt      time.Time `bson:"createdAt" json:"createdAt"`
}

// cached is what the Redis cache holds: the stored form, so titles and message text stay
// encrypted in Redis too.
type cached struct {
	Conversation storedConversation `json:"conversation"`
	Messages     []storedMessage    `json:"messages"`
}

// Store reaches conversations through the tenant-scoped stores.
type Store struct {
	mongo *tenantmongo.Store
	keys  *keyring.Keyring
	redis *tenantredis.Store
}

// New returns a Store.
func New(m *tenantmongo.Store, k *keyring.Keyring, r *tenantredis.Store) *Store {
	return &Store{mongo: m, keys: k, redis: r}
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create starts a conversation.
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
	c := storedConversation{ID: newID(), Title: ct, CreatedAt: now, UpdatedAt: now}
	if _, err := coll.InsertOne(ctx, c); err != nil {
		return Conversation{}, fmt.Errorf("conversations: create: %w", err)
	}
	return Conversation{ID: c.ID, Title: title, CreatedAt: now, UpdatedAt: now}, nil
}

// List returns the most recently updated conversations.
func (s *Store) List(ctx context.Context, limit int64) ([]Conversation, error) {
	coll, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return nil, err
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "updatedAt", Value: -1}}).SetLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("conversations: list: %w", err)
	}
	var stored []storedConversation
	if err := cur.All(ctx, &stored); err != nil {
		return nil, fmt.Errorf("conversations: list: %w", err)
	}
	out := make([]Conversation, 0, len(stored))
	for _, c := range stored {
		conv, err := s.open(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, conv)
	}
	return out, nil
}

// Get returns a conversation with its messages decrypted, from the cache when it can.
func (s *Store) Get(ctx context.Context, id string) (Conversation, []Message, error) {
	scope, err := s.redis.Scope(ctx)
	if err != nil {
		return Conversation{}, nil, err
	}
	var c cached
	if raw, err := scope.Get(ctx, cacheKind, id); err == nil && json.Unmarshal([]byte(raw), &c) == nil {
		return s.decrypt(ctx, c)
	}
	c, err = s.load(ctx, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	if raw, err := json.Marshal(c); err == nil {
		_ = scope.Set(ctx, cacheKind, id, string(raw), cacheTTL) // a failed cache write only costs the next read
	}
	return s.decrypt(ctx, c)
}

func (s *Store) load(ctx context.Context, id string) (cached, error) {
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
	cur, err := msgs.Find(ctx, bson.D{{Key: "conversationId", Value: id}}, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return cached{}, fmt.Errorf("conversations: messages: %w", err)
	}
	c.Messages = []storedMessage{}
	if err := cur.All(ctx, &c.Messages); err != nil {
		return cached{}, fmt.Errorf("conversations: messages: %w", err)
	}
	return c, nil
}

func (s *Store) decrypt(ctx context.Context, c cached) (Conversation, []Message, error) {
	out := make([]Message, 0, len(c.Messages))
	for _, m := range c.Messages {
		text, err := s.keys.Decrypt(ctx, TextField, m.Text)
		if err != nil {
			return Conversation{}, nil, fmt.Errorf("conversations: message %s: %w", m.ID, err)
		}
		out = append(out, Message{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Text: string(text), CreatedAt: m.CreatedAt})
	}
	conv, err := s.open(ctx, c.Conversation)
	if err != nil {
		return Conversation{}, nil, err
	}
	return conv, out, nil
}

// AddMessage appends a message to one of the tenant's conversations, its text encrypted with
// the tenant's newest data key, and drops the cached read.
func (s *Store) AddMessage(ctx context.Context, conversationID, role, text string) (Message, error) {
	conv, err := s.mongo.Collection(ctx, tenantmongo.Conversations)
	if err != nil {
		return Message{}, err
	}
	// FindOne on _id, not CountDocuments: FerretDB pushes down only the former; a count reads
	// the whole collection.
	err = conv.FindOne(ctx, bson.D{{Key: "_id", Value: conversationID}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
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
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := storedMessage{ID: newID(), ConversationID: conversationID, Role: role, Text: ct, CreatedAt: now}
	msgs, err := s.mongo.Collection(ctx, tenantmongo.Messages)
	if err != nil {
		return Message{}, err
	}
	if _, err := msgs.InsertOne(ctx, m); err != nil {
		return Message{}, fmt.Errorf("conversations: add message: %w", err)
	}
	if _, err := conv.UpdateOne(ctx, bson.D{{Key: "_id", Value: conversationID}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "messageCount", Value: 1}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: now}}}}); err != nil {
		return Message{}, fmt.Errorf("conversations: update: %w", err)
	}
	if scope, err := s.redis.Scope(ctx); err == nil {
		_ = scope.Del(ctx, cacheKind, conversationID)
	}
	return Message{ID: m.ID, ConversationID: conversationID, Role: role, Text: text, CreatedAt: now}, nil
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
