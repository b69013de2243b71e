// Package embeds has data types that embed unexported types: refgen
// generates their proxies and says which fields will not cross.
package embeds

type base struct{ ID int }

// hidden has no exported fields: embedding it hides nothing that would
// have crossed.
type hidden struct{ n int }

type Doc struct {
	base
	*hidden
	Items []Item
	X     int
}

type Item struct {
	*base
	Name string
}

type Store interface {
	Put(d Doc) error
	Get(id int) (Doc, error)
	Items() (map[string]Item, error)
}
