// A Kubernetes list as JSON text, split as it arrives: each element of the
// top-level member "items" is handed on as soon as its text is complete,
// to be parsed alone, and the rest of the document ({"kind", "apiVersion",
// "metadata", "items": []}) is parsed at the end. A list of 10k
// EndpointSlices parsed whole is tens of megabytes of objects, all alive
// until the last item is dealt with — long enough for V8 to move them to
// its old space, which only a full collection empties; an item parsed and
// converted on its own dies young. Nor does the whole text ever exist at
// once.
//
// Only the nesting is tracked: strings (escapes included) are skipped, and
// the member named "items" of the top-level object, when its value is an
// array, has its elements split off at the commas between them. Malformed
// text fails in JSON.parse, of an element or of the rest, or here when it
// ends inside a value or has an empty element.

const QUOTE = 0x22;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const NOT_BLANK = /[^ \t\n\r]/;

export class ListSplitter {
  readonly #onItem: (text: string) => void;
  /** 1 inside the top-level object, 2 inside a value of one of its members, and so on. */
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** Where a string at depth 1 is a member's name: after the object's `{` and after each `,`. */
  #namePosition = false;
  /** Reading a member's name (a string at depth 1 in name position), its text so far. */
  #name: string[] | undefined;
  #lastName = '';
  /** Inside the array that is the value of the top-level member "items". */
  #inItems = false;
  #items = 0;
  /** The document's text outside the items' elements, and the element being read. */
  readonly #rest: string[] = [];
  #item: string[] = [];

  constructor(onItem: (text: string) => void) {
    this.#onItem = onItem;
  }

  /** The next piece of the text. */
  write(chunk: string): void {
    // The state in locals while the chunk is scanned (written back at the end).
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    let namePosition = this.#namePosition;
    let inItems = this.#inItems;
    // Where, in this chunk, the text of the rest, the element and the name being read starts.
    let restFrom = inItems ? -1 : 0;
    let itemFrom = inItems ? 0 : -1;
    let nameFrom = this.#name !== undefined ? 0 : -1;
    const n = chunk.length;
    // The next backslash at or after i (n: none), looked for again only once passed.
    let backslash = -1;
    let i = 0;
    while (i < n) {
      if (inString) {
        // To the closing quote at once: most of a list's text is in strings.
        if (escaped) {
          escaped = false;
          i++;
          continue;
        }
        if (backslash < i) {
          backslash = chunk.indexOf('\\', i);
          if (backslash < 0) backslash = n;
        }
        const quote = chunk.indexOf('"', i);
        if (backslash < n && (quote < 0 || backslash < quote)) {
          i = backslash + 1;
          escaped = true;
          continue;
        }
        if (quote < 0) break;
        inString = false;
        if (this.#name !== undefined) {
          this.#name.push(chunk.slice(nameFrom, quote));
          this.#lastName = this.#name.join('');
          this.#name = undefined;
          nameFrom = -1;
        }
        i = quote + 1;
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (c === QUOTE) {
        inString = true;
        if (depth === 1 && namePosition) {
          namePosition = false;
          this.#name = [];
          nameFrom = i + 1;
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        depth++;
        if (depth === 1) namePosition = c === OPEN_BRACE;
        else if (depth === 2 && c === OPEN_BRACKET && this.#lastName === 'items') {
          // The rest keeps "items": [], empty.
          this.#rest.push(chunk.slice(restFrom, i + 1));
          restFrom = -1;
          inItems = true;
          itemFrom = i + 1;
        }
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (inItems && depth === 2) {
          this.#element(chunk.slice(itemFrom, i), true);
          itemFrom = -1;
          inItems = false;
          restFrom = i;
        }
        depth--;
      } else if (c === COMMA) {
        if (depth === 1) namePosition = true;
        else if (inItems && depth === 2) {
          this.#element(chunk.slice(itemFrom, i), false);
          itemFrom = i + 1;
        }
      }
      i++;
    }
    if (nameFrom >= 0) this.#name!.push(chunk.slice(nameFrom));
    if (itemFrom >= 0) this.#item.push(chunk.slice(itemFrom));
    if (restFrom >= 0) this.#rest.push(chunk.slice(restFrom));
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    this.#namePosition = namePosition;
    this.#inItems = inItems;
  }

  /** The document without its items' elements, parsed; throws when it is not JSON (or ended inside a value). */
  end(): unknown {
    if (this.#depth !== 0 || this.#inString) throw new SyntaxError('the JSON list ended inside a value');
    return JSON.parse(this.#rest.join(''));
  }

  /** An element's text is complete (`last`: the array ended after it). */
  #element(tail: string, last: boolean): void {
    this.#item.push(tail);
    const text = this.#item.join('');
    this.#item = [];
    if (NOT_BLANK.test(text)) {
      this.#items++;
      this.#onItem(text);
    } else if (!last || this.#items > 0) throw new SyntaxError('an empty element in the JSON list\'s items');
  }
}
