// Package limits holds the bounds every tenant gets by default, so that no tenant can take the
// stores, the API's memory or another tenant's answers with data of its own: how many settings
// and conversations it keeps, how large each value is, how much it keeps in each store, and how
// large a page of any list is. The plans issue makes them a tenant's plan; until then every
// tenant has Default().
package limits

import (
	"errors"
	"fmt"
)

// Tenant is one tenant's bounds. Sizes are bytes of UTF-8 (of jsonb's text form for settings).
type Tenant struct {
	// Settings (PostgreSQL).
	MaxSettings      int   // keys per tenant
	MaxSettingBytes  int   // one value
	MaxSettingsBytes int64 // every value of the tenant together

	// Conversations (MongoDB).
	MaxConversations           int   // per tenant
	MaxMessagesPerConversation int   // per conversation
	MaxMessageBytes            int   // one message's text
	MaxDocumentBytes           int64 // titles and message texts of the tenant together
}

// Default is every tenant's bound before plans exist. A page of settings is at most
// MaxPage × MaxSettingBytes (1.6 MiB), a page of messages MaxPage × MaxMessageBytes (1.6 MiB);
// both well under what 30 concurrent reads of one tenant can hold in the API's memory.
func Default() Tenant {
	return Tenant{
		MaxSettings:      200,
		MaxSettingBytes:  16 << 10,
		MaxSettingsBytes: 1 << 20,

		MaxConversations:           1000,
		MaxMessagesPerConversation: 1000,
		MaxMessageBytes:            16 << 10,
		MaxDocumentBytes:           64 << 20,
	}
}

// Pages of every list of the tenant API.
const (
	DefaultPage = 50
	MaxPage     = 100
)

// ErrExceeded is what every *Exceeded error Is.
var ErrExceeded = errors.New("limit exceeded")

// Exceeded says which bound a write would break; nothing was written.
type Exceeded struct {
	// Bound names the bound as the API reports it: "settings", "settingBytes", …
	Bound string
	Limit int64
	// TooLarge: the one value is over its size bound (413); otherwise the tenant is full (403).
	TooLarge bool
}

func (e *Exceeded) Error() string {
	if e.TooLarge {
		return fmt.Sprintf("the value is larger than this tenant's %s limit of %d bytes", e.Bound, e.Limit)
	}
	return fmt.Sprintf("this tenant has reached its %s limit of %d", e.Bound, e.Limit)
}

// Is makes errors.Is(err, ErrExceeded) hold.
func (e *Exceeded) Is(target error) bool { return target == ErrExceeded }

// Bound names, as the problem documents say them.
const (
	BoundSettings      = "settings"
	BoundSettingBytes  = "settingBytes"
	BoundSettingsBytes = "settingsTotalBytes"
	BoundConversations = "conversations"
	BoundMessages      = "messagesPerConversation"
	BoundMessageBytes  = "messageBytes"
	BoundDocumentBytes = "documentTotalBytes"
)
