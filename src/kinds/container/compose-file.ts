/**
 * A docker compose file whose one service's image tag we change. The YAML Document API finds
 * the `image:` scalar and its exact source range; the new tag is spliced into the original
 * text there, so comments, key order, quoting and layout are untouched: a byte diff shows the
 * tag and nothing else. The result is parsed again and checked before it is written.
 */
import { readFileSync } from 'node:fs';
import { isScalar, parseDocument, type Document } from 'yaml';
import { UpdateError } from '../../core/errors.js';
import { parseImageRef, versionFromImage, type ImageRef } from './installed.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';

export class ComposeFile {
  private constructor(
    readonly path: string,
    readonly text: string,
    private readonly doc: Document.Parsed,
  ) {}

  static read(path: string): ComposeFile {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new UpdateError('compose_unreadable', `cannot read the compose file ${path}: ${(error as Error).message}`);
    }
    return ComposeFile.parse(path, text);
  }

  static parse(path: string, text: string): ComposeFile {
    const doc = parseDocument(text, { keepSourceTokens: true });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = e.linePos?.[0];
      throw new UpdateError('compose_invalid', `the compose file ${path} is not valid YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${e.message.split('\n')[0]}`);
    }
    return new ComposeFile(path, text, doc);
  }

  hasService(service: string): boolean {
    return this.doc.hasIn(['services', service]);
  }

  /** The service's `image:` text, or an error saying why it cannot be updated by tag. */
  image(service: string): { image: string; ref: ImageRef; tag: string } {
    if (!this.hasService(service)) throw new UpdateError('compose_no_service', `the compose file ${this.path} has no service "${service}"`);
    const node = this.doc.getIn(['services', service, 'image'], true);
    if (!isScalar(node) || typeof node.value !== 'string') {
      throw new UpdateError('compose_no_image', `service "${service}" in ${this.path} has no image: (built from source?); only image tags can be updated`);
    }
    const image = node.value;
    const installed = versionFromImage(image);
    const ref = parseImageRef(image);
    if (!installed.version || !ref.tag) throw new UpdateError('compose_tag_unusable', `service "${service}" in ${this.path} cannot be updated: ${installed.reason}`);
    if (ref.digest) {
      throw new UpdateError('compose_tag_unusable', `service "${service}" in ${this.path} pins its image by digest (${image}); a new tag would still run the old digest, so it cannot be updated by tag`);
    }
    return { image, ref, tag: ref.tag };
  }

  /** The file's text with the service's image tag replaced, nothing else changed. */
  withTag(service: string, newTag: string): string {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(newTag)) throw new UpdateError('bad_tag', `"${newTag}" is not a valid image tag`);
    const { image, ref, tag } = this.image(service);
    const node = this.doc.getIn(['services', service, 'image'], true);
    if (!isScalar(node) || !node.range) throw new UpdateError('internal', 'the image scalar has no source range');
    const [start, valueEnd] = node.range;
    const source = this.text.slice(start, valueEnd);
    // The tag is the last ":<tag>" before any "@digest" in the scalar's source text.
    const needle = `:${tag}`;
    const digestAt = ref.digest ? source.lastIndexOf(`@${ref.digest}`) : -1;
    const searchEnd = digestAt >= 0 ? digestAt : source.length;
    const at = source.lastIndexOf(needle, searchEnd - needle.length);
    const rest = at < 0 ? '' : source.slice(at + needle.length, searchEnd);
    if (at < 0 || !/^["']?$/.test(rest.trim())) {
      throw new UpdateError('compose_tag_unusable', `cannot locate the tag of "${image}" in ${this.path} to rewrite it safely`);
    }
    const newSource = source.slice(0, at + 1) + newTag + source.slice(at + needle.length);
    const text = this.text.slice(0, start) + newSource + this.text.slice(valueEnd);
    // Check: the new text parses, the service's image is exactly the old one with the new tag.
    const after = ComposeFile.parse(this.path, text);
    const expected = `${ref.repository}:${newTag}${ref.digest ? `@${ref.digest}` : ''}`;
    if (after.image(service).image !== expected) {
      throw new UpdateError('compose_tag_unusable', `rewriting the tag of "${image}" in ${this.path} did not give "${expected}"; nothing was written`);
    }
    return text;
  }

  /** Writes the file with the new tag, atomically. Returns the new text. */
  writeTag(service: string, newTag: string): string {
    const text = this.withTag(service, newTag);
    writeFileAtomic(this.path, text);
    return text;
  }
}
