package postgres

import (
	"reflect"
	"testing"

	"postkasse.dev/postkasse/store"
)

// TestSameMethodsAsBbolt: the PostgreSQL store has every exported method
// of the bbolt store, with the same signature, so a method added to one
// backend and not the other fails here rather than in a server that is
// switched to it.
func TestSameMethodsAsBbolt(t *testing.T) {
	t.Parallel()
	bolt := reflect.TypeOf((*store.Store)(nil))
	pg := reflect.TypeOf((*Store)(nil))
	for i := range bolt.NumMethod() {
		want := bolt.Method(i)
		got, ok := pg.MethodByName(want.Name)
		if !ok {
			t.Errorf("postgres.Store lacks %s%s", want.Name, signature(want.Type))
			continue
		}
		if signature(got.Type) != signature(want.Type) {
			t.Errorf("%s: postgres has %s, bbolt %s", want.Name, signature(got.Type), signature(want.Type))
		}
	}
	for i := range pg.NumMethod() {
		if name := pg.Method(i).Name; !hasMethod(bolt, name) {
			t.Errorf("postgres.Store has %s, which the bbolt store lacks", name)
		}
	}
}

func hasMethod(t reflect.Type, name string) bool {
	_, ok := t.MethodByName(name)
	return ok
}

// signature renders a method's type without its receiver.
func signature(m reflect.Type) string {
	s := "("
	for i := 1; i < m.NumIn(); i++ {
		if i > 1 {
			s += ", "
		}
		if m.IsVariadic() && i == m.NumIn()-1 {
			s += "..." + m.In(i).Elem().String()
			continue
		}
		s += m.In(i).String()
	}
	s += ") ("
	for i := range m.NumOut() {
		if i > 0 {
			s += ", "
		}
		s += m.Out(i).String()
	}
	return s + ")"
}
