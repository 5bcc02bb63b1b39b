import { EventEmitter } from "events";

export interface User {
  id: number;
  name: string;
}

export type UserId = number;

export enum Role {
  Admin,
  Member,
}

namespace Registry {
  export function lookup(id: UserId): User | undefined {
    return undefined;
  }
}

/** Keeps users in memory. */
export abstract class UserStore extends EventEmitter {
  private users = new Map<UserId, User>();

  constructor(private readonly capacity: number) {
    super();
  }

  add(user: User): void {
    this.users.set(user.id, user);
    this.emit("added", user);
  }

  abstract persist(): Promise<void>;
}

export const findUser = async (store: UserStore, id: UserId): Promise<User | undefined> => {
  return Registry.lookup(id);
};

function isAdmin(role: Role): boolean {
  return role === Role.Admin;
}
