// TextDecoder and TextEncoder for the worlds an instance makes after its
// first (the shared-instance level): the first world has Javy's, and these
// behave as those do (UTF-8 only, the same options, errors and messages), so
// a connector sees the same globals at either level. Evaluated once per new
// world, before world.js, with the two conversions from text.rs.
(function (global, decodeUtf8, encodeUtf8) {
    'use strict';

    const LABELS = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];

    class TextDecoder {
        constructor(label = 'utf-8', options = {}) {
            label = label.trim().toLowerCase();
            if (!LABELS.includes(label)) {
                throw new RangeError('The encoding label provided must be utf-8');
            }
            Object.defineProperties(this, {
                encoding: { value: 'utf-8', enumerable: true, writable: false },
                fatal: { value: !!options.fatal, enumerable: true, writable: false },
                ignoreBOM: { value: !!options.ignoreBOM, enumerable: true, writable: false },
            });
        }

        decode(input, options = {}) {
            if (input === undefined) {
                return '';
            }
            if (options.stream) {
                throw new Error('Streaming decode is not supported');
            }
            const offset = input.byteOffset || 0;
            const length = input.byteLength;
            const buffer = ArrayBuffer.isView(input) ? input.buffer : input;
            if (!(buffer instanceof ArrayBuffer)) {
                throw new TypeError("The provided value is not of type '(ArrayBuffer or ArrayBufferView)'");
            }
            return decodeUtf8(buffer, offset, length, this.fatal, this.ignoreBOM);
        }
    }

    class TextEncoder {
        constructor() {
            Object.defineProperties(this, {
                encoding: { value: 'utf-8', enumerable: true, writable: false },
            });
        }

        encode(input = '') {
            return new Uint8Array(encodeUtf8(input.toString()));
        }

        encodeInto(source, destination) {
            throw new Error('encodeInto is not supported');
        }
    }

    global.TextDecoder = TextDecoder;
    global.TextEncoder = TextEncoder;
})
